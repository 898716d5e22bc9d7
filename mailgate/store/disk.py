"""What makes a new file name survive a power cut."""

from __future__ import annotations

import os
from pathlib import Path


def sync_directory(directory: Path) -> None:
    """Sync a directory: a new entry in it (a created or renamed file) must survive a crash,
    not just the file's data, which the file's own fsync covers."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
