"""The model registry: every trained Rasa model, and which one serves customers.

Rasa's own model id (``metadata.json`` inside the archive) identifies a model everywhere: the
registry, the model server's answers, and the ``model_id`` Rasa writes on each tracker event,
so monitoring can compare models before and after a release. The archive's SHA-256 is the
model server's ETag.
"""

from __future__ import annotations

import json
import logging
import tarfile
from pathlib import Path

from sqlmodel import Session, select

from common import audit
from common.db import utcnow
from common.errors import Conflict
from common.files import sha256_file
from learning.models import ModelStatus, ModelVersion

logger = logging.getLogger(__name__)


class RegistryError(Conflict):
    """A registry operation that cannot be done, with a message for the operator."""


def rasa_model_id(archive: Path) -> str:
    """Rasa's model id from the archive's ``metadata.json``."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = next((m for m in tar.getmembers()
                           if Path(m.name).name == "metadata.json" and m.isfile()), None)
            handle = tar.extractfile(member) if member else None
            metadata = json.loads(handle.read()) if handle else {}
    except (OSError, tarfile.TarError, json.JSONDecodeError) as error:
        raise RegistryError(f"{archive}: not a readable Rasa model archive ({error})") from None
    model_id = metadata.get("model_id")
    if not isinstance(model_id, str) or not model_id:
        raise RegistryError(f"{archive}: its metadata.json has no model_id")
    return model_id


def register(session: Session, archive: Path, *, data_hash: str = "", params: dict | None = None,
             metrics: dict | None = None, gate: dict | None = None, report: str = "",
             job_id: int | None = None,
             status: ModelStatus = ModelStatus.candidate) -> ModelVersion:
    """Add a model (or return the existing entry for the same Rasa model id)."""
    archive = archive.resolve()
    model_id = rasa_model_id(archive)
    existing = session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id)).first()
    if existing is not None:
        return existing
    entry = ModelVersion(model_id=model_id, file_name=archive.name, path=str(archive),
                         sha256=sha256_file(archive), size_bytes=archive.stat().st_size,
                         data_hash=data_hash, params=params or {}, metrics=metrics or {},
                         gate=gate or {}, report=report, status=status.value, job_id=job_id)
    session.add(entry)
    session.flush()
    return entry


def production(session: Session) -> ModelVersion | None:
    return session.exec(select(ModelVersion)
                        .where(ModelVersion.status == ModelStatus.production.value)).first()


def promote(session: Session, entry: ModelVersion, actor: str, reason: str = "") -> ModelVersion:
    """Make ``entry`` the production model; the previous one is archived. Caller commits."""
    if not Path(entry.path).is_file():
        raise RegistryError(f"model {entry.model_id}: its archive {entry.path} is gone")
    current = production(session)
    if current is not None and current.id == entry.id:
        return entry
    if current is not None:
        current.status = ModelStatus.archived
        session.add(current)
        session.flush()  # one production row at any moment
    entry.status = ModelStatus.production
    entry.promoted_by = actor
    entry.promoted_at = utcnow()
    session.add(entry)
    audit.record(session, actor, "model.promote", "model", entry.id, model_id=entry.model_id,
                 replaced=current.model_id if current else None, reason=reason)
    return entry


def rollback(session: Session, actor: str) -> ModelVersion:
    """Back to the model that served before the current one, which becomes ``rejected`` (so a
    second rollback goes one further back, not forth again). Caller commits."""
    current = production(session)
    if current is None:
        raise RegistryError("there is no production model to roll back")
    previous = session.exec(
        select(ModelVersion)
        .where(ModelVersion.status == ModelStatus.archived.value,
               ModelVersion.promoted_at.is_not(None),  # type: ignore[union-attr]
               ModelVersion.id != current.id)
        .order_by(ModelVersion.promoted_at.desc())  # type: ignore[union-attr]
    ).first()
    if previous is None:
        raise RegistryError("no earlier production model to roll back to")
    promote(session, previous, actor, reason=f"rollback from {current.model_id}")
    current.status = ModelStatus.rejected
    session.add(current)
    return previous


def prune(session: Session, root: Path, keep: int, actor: str) -> list[ModelVersion]:
    """Delete old archives under ``root`` (the registry directory) so retraining does not fill
    the disk; every row stays, with its metrics and report. Kept: the production model, the
    ``keep`` most recently replaced production models (what a rollback goes back to), and the
    ``keep`` newest of the rest. Files outside ``root`` (a model an operator brought) are never
    touched. Caller commits."""
    if keep < 1:
        raise RegistryError("keep at least one model besides production")
    root = root.resolve()
    rows = session.exec(select(ModelVersion).order_by(ModelVersion.id.desc())).all()  # type: ignore[union-attr]
    replaced = sorted((r for r in rows if r.status == ModelStatus.archived.value
                       and r.promoted_at is not None),
                      key=lambda r: r.promoted_at, reverse=True)  # type: ignore[arg-type, return-value]
    replaced_ids = {r.id for r in replaced}
    others = [r for r in rows
              if r.status != ModelStatus.production.value and r.id not in replaced_ids]
    kept = {r.id for r in rows if r.status == ModelStatus.production.value}
    kept |= {r.id for r in replaced[:keep]} | {r.id for r in others[:keep]}
    pruned = []
    for row in rows:
        path = Path(row.path)
        if row.id in kept or not path.is_file() or not path.resolve().is_relative_to(root):
            continue
        try:
            path.unlink()
        except OSError as error:  # a file we cannot delete costs disk, not the job
            logger.warning("model %s: archive %s not deleted: %s", row.model_id, path, error)
            continue
        audit.record(session, actor, "model.prune", "model", row.id, model_id=row.model_id,
                     freed_bytes=row.size_bytes)
        pruned.append(row)
    return pruned
