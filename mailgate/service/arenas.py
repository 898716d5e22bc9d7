"""Fewer malloc arenas for a process that runs for weeks.

glibc gives threads that allocate at the same moment arenas of their own, up to eight a
core, and keeps what is freed in each for that arena's later use. The daemon's threads
(intake, the scheduler's jobs, outgoing mail, IMAP polls) each leave freed memory behind
in their own arena, and the process grows for hours without holding more: in a soak
(benchmarks/soak.py) the daemon grew 0.6 MB a minute after the first five minutes with its
live Python objects and SQLite's caches grown by less than half of that; with two arenas,
0.2 MB a minute. Two is what MALLOC_ARENA_MAX=2 in the environment gives, which ops may set
instead; an explicit setting in the environment is left as it is.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger("mailgate.service")

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's <malloc.h>


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Ask glibc for at most `arenas` malloc arenas; True when it took the setting. Call it
    before threads start: an arena once made stays. Elsewhere (musl, macOS) nothing."""
    if "MALLOC_ARENA_MAX" in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    taken = mallopt(_M_ARENA_MAX, arenas) == 1
    if taken:
        log.info("event=malloc_arenas max=%d", arenas)
    return taken
