"""The daemon's processes keep to two malloc arenas, however many threads allocate."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mailgate.service.arenas import ARENAS
from tests.daemon_harness import Child, Sink, smtp_server, write_config
from tests.helpers import free_port, poll

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's arenas")

# Eight threads that query SQLite at once (it allocates with the GIL released), then the
# number of arenas glibc reports (malloc_info's <heap> elements).
PROBE = textwrap.dedent(
    """
    import ctypes, sqlite3, sys, threading
    from mailgate.service.arenas import limit_malloc_arenas
    print(limit_malloc_arenas() if sys.argv[1] == "limit" else "-")
    def work():
        db = sqlite3.connect(sys.argv[2], timeout=30, check_same_thread=False)
        for _ in range(200):
            db.execute("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
                       "LIMIT 2000) SELECT group_concat(x) FROM n").fetchall()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL(None)
    libc.open_memstream.restype = ctypes.c_void_p
    text, size = ctypes.c_char_p(), ctypes.c_size_t()
    stream = ctypes.c_void_p(libc.open_memstream(ctypes.byref(text), ctypes.byref(size)))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(text.value.decode().count("<heap nr="))
    """
)


def probe(tmp_path: Path, mode: str, **env: str) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode, str(tmp_path / "probe.db")],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        timeout=120,
    )
    taken, heaps = done.stdout.split()
    return taken, int(heaps)


def test_threads_share_two_arenas_once_limited(tmp_path: Path) -> None:
    assert probe(tmp_path, "limit") == ("True", ARENAS)
    # The same threads without the limit: an arena of their own for most of them.
    _, heaps = probe(tmp_path, "none")
    assert heaps > ARENAS


def test_an_arena_limit_set_by_ops_is_left_as_it_is(tmp_path: Path) -> None:
    taken, heaps = probe(tmp_path, "limit", MALLOC_ARENA_MAX="4")
    assert taken == "False"
    assert ARENAS < heaps <= 4


def test_the_daemon_and_its_worker_limit_their_arenas(tmp_path: Path) -> None:
    """Each process says so in the log as it starts, before any thread of its own."""
    listen = f"127.0.0.1:{free_port()}"
    with smtp_server(Sink()) as relay_port:
        daemon = Child(write_config(tmp_path, listen, relay_port), listen, tmp_path / "log")
        daemon.start()
        try:
            poll(lambda: _limited(tmp_path / "log") >= 2, timeout=30, what="both processes")
        finally:
            daemon.stop()
    assert _limited(tmp_path / "log") == 2  # the daemon and its one worker


def _limited(log: Path) -> int:
    return log.read_text(encoding="utf-8").count(f"event=malloc_arenas max={ARENAS}")
