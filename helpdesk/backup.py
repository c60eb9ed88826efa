"""``helpdesk backup DIR`` and ``helpdesk restore DIR``: everything a running product needs to
come back elsewhere, consistent with itself.

A backup holds the admin database and the tracker store (SQLite's online backup API, or
``pg_dump``), every registered model's archive, and the answer index's current snapshot, with
a manifest of checksums. The order makes the parts agree:

1. the index snapshot first, so it is never ahead of the answers in the database (a restored
   action server catches up from its version instead of re-encoding everything);
2. then the admin database, the source of truth (answers, people, the registry);
3. then the tracker store;
4. then the archives the dumped registry names (archives never change once written).

It is written into a temporary folder beside ``DIR`` and renamed at the end, so an interrupted
backup leaves no ``DIR`` that looks whole. A restore checks every checksum before touching
anything, refuses to write into a database that already has tables, and rewrites the
registry's archive paths for the new ``var/``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from common.config import Settings

FORMAT = 1
MANIFEST = "manifest.json"
Report = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Database:
    """One of the two databases, as a backup sees it."""

    label: str  # "admin database" or "tracker store"
    variable: str
    url: str

    @property
    def kind(self) -> str:
        return make_url(self.url).get_backend_name()

    @property
    def stem(self) -> str:
        return "admin" if self.label == "admin database" else "tracker"

    @property
    def file_name(self) -> str:
        return f"{self.stem}.sqlite" if self.kind == "sqlite" else f"{self.stem}.dump"

    def sqlite_path(self) -> Path:
        return Path(make_url(self.url).database or "")

    def libpq_url(self) -> str:
        """The URL for pg_dump and pg_restore (libpq knows no ``+driver``)."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(
            hide_password=False)


def databases(settings: Settings) -> list[Database]:
    return [Database("admin database", "HELPDESK_DATABASE_URL", settings.database_url),
            Database("tracker store", "HELPDESK_TRACKER_STORE_URL", settings.tracker_store_url)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed; PostgreSQL's client tools are needed "
                          f"to {what} (Debian: apt-get install postgresql-client)") from None
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip()[-800:]}")


def _dump(database: Database, target: Path) -> None:
    if database.kind == "sqlite":
        source = database.sqlite_path()
        if not source.is_file():
            raise BackupError(f"the {database.label} {source} does not exist")
        # SQLite's online backup: a consistent copy while the services keep writing.
        live, copy = sqlite3.connect(source), sqlite3.connect(target)
        try:
            live.backup(copy)
        finally:
            copy.close()
            live.close()
        return
    if database.kind != "postgresql":
        raise BackupError(f"cannot back up a {database.kind} {database.label}")
    _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
          f"--dbname={database.libpq_url()}", f"--file={target}"],
         f"dumping the {database.label}")


def _copy_snapshot(index_dir: Path, target: Path) -> dict[str, Any] | None:
    """The current index snapshot, copied whole (a newer one may replace it meanwhile: then
    copy that one)."""
    from retrieval.snapshot import Manifest, SnapshotError, current_folder

    for _ in range(3):
        folder = current_folder(index_dir)
        if folder is None:
            return None
        try:
            shutil.copytree(folder, target / folder.name)
            manifest = Manifest.read(target / folder.name)
        except (OSError, SnapshotError):
            shutil.rmtree(target / folder.name, ignore_errors=True)
            continue
        return {"folder": folder.name, "answers_version": manifest.answers_version,
                "answers": manifest.answers, "model": manifest.model}
    raise BackupError(f"the index snapshot in {index_dir} kept changing during the backup; "
                      "run it again")


def _registry(admin: Database) -> tuple[list[dict[str, Any]], int]:
    """Every registered model (id, status, archive path) and the answers version, read from
    the admin database as it was dumped."""
    from sqlalchemy import create_engine

    if admin.kind == "sqlite":
        engine = create_engine(f"sqlite:///{admin.sqlite_path()}")
    else:
        engine = create_engine(admin.url)
    try:
        with engine.connect() as connection:
            models = [dict(row._mapping) for row in connection.execute(
                text("SELECT model_id, status, path FROM model_version ORDER BY id"))]
            version = connection.execute(text("SELECT version FROM answer_clock")).scalar()
    finally:
        engine.dispose()
    return models, int(version or 0)


def backup(settings: Settings, folder: Path, report: Report = print) -> dict[str, Any]:
    """Write a backup into ``folder`` (which must not exist yet); returns its manifest."""
    folder = folder.resolve()
    if folder.exists():
        raise BackupError(f"{folder} already exists; choose a new folder for the backup")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.partial-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        manifest: dict[str, Any] = {
            "format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(),
            "databases": {}, "models": [], "index": None}
        report("1/4 the answer index's snapshot")
        (staging / "index").mkdir()
        manifest["index"] = _copy_snapshot(settings.index_dir, staging / "index")
        admin, tracker = databases(settings)
        for step, database in (("2/4", admin), ("3/4", tracker)):
            report(f"{step} the {database.label} ({database.kind})")
            target = staging / database.file_name
            _dump(database, target)
            manifest["databases"][database.stem] = {
                "kind": database.kind, "file": database.file_name, "sha256": _sha256(target)}
        dumped_admin = admin
        if admin.kind == "sqlite":  # read the registry from the copy, as it was dumped
            dumped_admin = Database(admin.label, admin.variable,
                                    f"sqlite:///{staging / admin.file_name}")
        models, version = _registry(dumped_admin)
        manifest["answers_version"] = version
        report(f"4/4 {len(models)} model archives")
        (staging / "models").mkdir()
        for model in models:
            source = Path(model["path"])
            if not source.is_file():
                if model["status"] == "production":
                    raise BackupError(f"the production model's archive {source} is missing")
                report(f"    skipped {model['model_id']}: its archive {source} is gone")
                continue
            name = f"{model['model_id']}.tar.gz"
            shutil.copy2(source, staging / "models" / name)
            manifest["models"].append({"model_id": model["model_id"], "status": model["status"],
                                       "file": name, "sha256": _sha256(staging / "models" / name)})
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, with every file's checksum verified."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BackupError(f"{folder} is not a backup ({MANIFEST}: {error})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{folder}: backup format {manifest.get('format')}, expected {FORMAT}")
    files = [(folder / entry["file"], entry["sha256"])
             for entry in manifest["databases"].values()]
    files += [(folder / "models" / entry["file"], entry["sha256"]) for entry in manifest["models"]]
    for path, expected in files:
        if not path.is_file() or _sha256(path) != expected:
            raise BackupError(f"{path} is missing or damaged (its checksum differs from the "
                              "manifest's)")
    return manifest


def _ensure_empty(database: Database) -> None:
    if database.kind == "sqlite":
        path = database.sqlite_path()
        if path.exists() and path.stat().st_size > 0:
            raise BackupError(f"the {database.label} {path} already exists; restore into a new "
                              f"var folder or {database.variable}")
        return
    from sqlalchemy import create_engine

    engine = create_engine(database.url)
    try:
        tables = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(f"the {database.label} ({database.variable}) already has tables "
                          f"({', '.join(sorted(tables)[:5])}...); restore into an empty database")


def _load(database: Database, dump: Path) -> None:
    if database.kind == "sqlite":
        target = database.sqlite_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copy2(dump, partial)
        partial.replace(target)
        return
    _run(["pg_restore", "--no-owner", "--no-privileges", "--single-transaction",
          f"--dbname={database.libpq_url()}", str(dump)], f"restoring the {database.label}")


def restore(settings: Settings, folder: Path, report: Report = print) -> dict[str, Any]:
    """Restore the backup in ``folder`` into the configured databases and ``var/``."""
    folder = folder.resolve()
    manifest = read_manifest(folder)
    targets = databases(settings)
    for database in targets:
        saved = manifest["databases"][database.stem]
        if saved["kind"] != database.kind:
            raise BackupError(f"the backup's {database.label} is {saved['kind']}, but "
                              f"{database.variable} is {database.kind}: restore into the same "
                              "kind of database")
        _ensure_empty(database)
    for step, database in zip(("1/4", "2/4"), targets, strict=True):
        report(f"{step} the {database.label} ({database.kind})")
        _load(database, folder / manifest["databases"][database.stem]["file"])
    report(f"3/4 {len(manifest['models'])} model archives into {settings.registry_dir}")
    settings.registry_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for entry in manifest["models"]:
        target = settings.registry_dir / entry["file"]
        partial = target.with_name(target.name + ".partial")
        shutil.copy2(folder / "models" / entry["file"], partial)
        partial.replace(target)
        paths[entry["model_id"]] = str(target)
    _repoint_registry(targets[0], paths)
    report("4/4 the answer index's snapshot")
    if manifest["index"]:
        from common.files import write_atomic

        name = manifest["index"]["folder"]
        snapshots = settings.index_dir / "snapshots"
        snapshots.mkdir(parents=True, exist_ok=True)
        staging = snapshots / f".tmp-{name}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder / "index" / name, staging)
        staging.rename(snapshots / name)
        write_atomic(settings.index_dir / "CURRENT", name + "\n")
    return manifest


def _repoint_registry(admin: Database, paths: dict[str, str]) -> None:
    """The restored registry names the archives where this ``var/`` keeps them."""
    from sqlalchemy import create_engine

    engine = create_engine(admin.url)
    try:
        with engine.begin() as connection:
            for model_id, path in paths.items():
                connection.execute(text("UPDATE model_version SET path = :path "
                                        "WHERE model_id = :model_id"),
                                   {"path": path, "model_id": model_id})
    finally:
        engine.dispose()
