"""Writing a file so that a reader sees the old content or the new, never half of either."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["fsync_dir", "write_atomic"]


def write_atomic(path: Path | str, data: str | bytes, *, durable: bool = False, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one rename.

    The content goes to a temporary file of its own in the same folder (so that two
    writers never share it and the rename stays on one file system), which then
    replaces ``path``. If anything fails, the old file is left as it was and the
    temporary file is removed. ``durable=True`` also flushes the file and then its
    folder to the disk before returning, for content that must survive a power cut
    (a downloaded data file); a report that can be written again does not need it.
    The file gets permissions ``mode``, readable by everyone by default.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes it 0o600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(path: Path | str) -> None:
    """Flush a folder's entries (a rename into it) to the disk, where the platform can."""
    # Not every platform can open a directory; there the rename's durability is the OS's.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
