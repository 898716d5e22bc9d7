"""SQLite's page cache grows with the desk: a connection to a big database file gets a
share of its size (between SQLite's default and a cap), a small desk keeps the default."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from mailgate.store.database import CACHE_MAX_KIB, CACHE_MIN_KIB, CACHE_SHARE, Store

MIB = 1024 * 1024


def cache_of(path: Path) -> int:
    """The cache a new connection of mailgate's gets, in KiB (SQLite gives it negative)."""
    store = Store(f"sqlite:///{path}")
    try:
        with store.engine.connect() as conn:
            size = int(conn.execute(text("PRAGMA cache_size")).scalar_one())
    finally:
        store.dispose()
    return -size


def grown_to(path: Path, mib: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
        conn.execute("INSERT INTO filler VALUES (zeroblob(?))", (mib * MIB,))


def test_a_small_desk_keeps_sqlites_default_cache(tmp_path: Path) -> None:
    path = tmp_path / "small.db"
    grown_to(path, 1)
    assert cache_of(path) == CACHE_MIN_KIB


def test_a_big_desk_gets_a_share_of_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    grown_to(path, 256)
    size_kib = path.stat().st_size // 1024
    assert CACHE_MIN_KIB < cache_of(path) == size_kib // CACHE_SHARE < CACHE_MAX_KIB
