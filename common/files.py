"""Files written so that a crash or Ctrl-C never leaves a half-written one where a reader looks:
each write goes to a temporary sibling, then an atomic rename puts it in place.

The sibling lives in the same folder because a rename is only atomic within one file system.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

CHUNK = 1 << 20  # hash in 1 MiB blocks: model archives and weights are hundreds of MB


def sha256_file(path: Path, digest: hashlib._Hash | None = None) -> str:
    """The SHA-256 of a file read in blocks (never the whole file in memory); pass ``digest``
    to fold several files into one hash."""
    digest = digest or hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_files(folder: Path, names: Iterable[str], with_names: bool = True) -> str:
    """One SHA-256 over several files of a folder, in the given order; ``with_names`` folds
    each file's name in before its bytes, so renaming a file changes the hash."""
    digest = hashlib.sha256()
    for name in names:
        if with_names:
            digest.update(name.encode())
        sha256_file(Path(folder) / name, digest)
    return digest.hexdigest()


def weights_fingerprint(model: str) -> str:
    """A short id of a model folder's weights: the folder's name and a hash of its weight
    files (a hub name stays as it is). The retriever keys its vectors with it, and the intent
    model records it when it left the same weights untouched, so that both can tell when one
    model's sentence vectors are the other's."""
    folder = Path(model)
    if not folder.is_dir():
        return model
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    digest = sha256_files(folder, [w.name for w in weights], with_names=False)
    return f"{folder.name}-{digest[:16]}"


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Write ``content`` to ``path`` through a temporary sibling and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if isinstance(content, bytes):
        partial.write_bytes(content)
    else:
        partial.write_text(content, encoding="utf-8")
    os.replace(partial, path)
    return path


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy a file into place through a temporary sibling and a rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    return target


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """A temporary sibling folder to fill; on success it replaces ``final`` (an old ``final``
    is moved aside first and removed after, so there is always a whole one); on error it is
    removed and ``final`` is untouched."""
    final = Path(final).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield staging
        if final.exists():
            backup = final.with_name(f".{final.name}-old-{os.getpid()}")
            shutil.rmtree(backup, ignore_errors=True)
            final.rename(backup)
            staging.rename(final)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
