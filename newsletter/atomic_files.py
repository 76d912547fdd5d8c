"""Files replaced whole: a reader, or a crash, sees the old file or the new one, never a part.

For the files the service rewrites while other processes read them (the prompt rules and
their kept versions, the dev Stripe sandbox's state): the bytes go to a temporary file
beside the old one, are synced to disk and renamed over it, and the folder is synced so
that the rename survives a power cut too.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, new_mode: int = 0o644) -> None:
    """Replace `path` by `data`, keeping the old file's mode (`new_mode` for a new file:
    mkstemp's 0600 would hide the prompt rules from a web server running as another user)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode(path, new_mode)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """The folder's entries on disk: a rename in it, not only the file's bytes."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _mode(path: Path, new_mode: int) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return new_mode  # not from the umask: reading it would change it for every thread
