"""The README's PostgreSQL procedure, run for real: pg_dump and `db backup --files-only`,
then pg_restore and `db restore`; and `db backup` alone pointing to pg_dump."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.conftest import _create_database, _drop_database
from tests.daemon_harness import daemon_config, write_toml
from tests.mails import make_mail
from tests.test_cli import mailgate

pytestmark = pytest.mark.postgres


def test_on_postgresql_backup_points_to_pg_dump(tmp_path: Path, postgres_url: str) -> None:
    cfg = write_toml(daemon_config(tmp_path))
    cfg.write_text(cfg.read_text().replace(f"sqlite:///{tmp_path}/mailgate.db", postgres_url))
    result = mailgate("db", "backup", str(tmp_path / "backup"), config=cfg)
    assert result.returncode == 78
    assert "pg_dump" in result.stderr and "--files-only" in result.stderr
    assert not (tmp_path / "backup").exists()


def test_the_postgresql_procedure_pg_dump_then_the_files(
    tmp_path: Path, postgres_server: str, postgres_url: str
) -> None:
    """README's steps: pg_dump, `db backup --files-only`; pg_restore, `db restore`."""
    live = write_toml(daemon_config(tmp_path / "live"))
    live.write_text(
        live.read_text().replace(f"sqlite:///{tmp_path}/live/mailgate.db", postgres_url)
    )
    assert mailgate("db", "upgrade", config=live).returncode == 0
    for n in range(2):
        mail = make_mail(
            subject=f"Order {n}",
            attachments=((f"order-{n}.pdf", "application/pdf", os.urandom(3000)),),
        )
        (tmp_path / f"in-{n}.eml").write_bytes(mail)
        assert mailgate("ingest", str(tmp_path / f"in-{n}.eml"), config=live).returncode == 0
    dump, backup = tmp_path / "mailgate.dump", tmp_path / "mailgate-files"
    libpq = postgres_url.replace("+psycopg", "")
    with psycopg.connect(libpq, autocommit=True) as conn:  # a message in hand at the dump
        conn.execute("UPDATE intake SET in_hand_by = 'run-at-work' WHERE id = 1")
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", libpq], check=True)
    made = mailgate("db", "backup", "--files-only", str(backup), config=live)
    assert made.returncode == 0, made.stderr
    assert "backed up the files: 2 tickets" in made.stdout
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["database"] == "postgresql"
    assert sorted(entry["kind"] for entry in manifest["files"]) == ["blob", "blob", "key"]

    name = _create_database(postgres_server)
    try:
        target_url = postgres_url.rpartition("/")[0] + f"/{name}"
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={target_url.replace('+psycopg', '')}", dump],
            check=True,
        )
        restored = write_toml(daemon_config(tmp_path / "restored"))
        restored.write_text(
            restored.read_text().replace(f"sqlite:///{tmp_path}/restored/mailgate.db", target_url)
        )
        result = mailgate("db", "restore", str(backup), config=restored)
        assert result.returncode == 0, result.stderr
        assert "pg_restore" in result.stdout
        with psycopg.connect(target_url.replace("+psycopg", "")) as conn:
            marks = conn.execute("SELECT in_hand_by FROM intake").fetchall()
        assert marks == [("",), ("",)]  # nobody died with it: it waits, as after a stop
        for cid in ("CID-1000", "CID-1001"):
            before = mailgate("tickets", "show", cid, "--format", "json", config=live)
            after = mailgate("tickets", "show", cid, "--format", "json", config=restored)
            assert json.loads(after.stdout) == json.loads(before.stdout)
        # The search index came back with the dump (its functions name their schema).
        found = mailgate("search", "file:order-1.pdf", "--format", "json", config=restored)
        assert [hit["cid"] for hit in json.loads(found.stdout)] == ["CID-1001"], found.stderr
        for entry in manifest["files"]:
            if entry["kind"] == "blob":
                path = entry["path"].removeprefix("data/")
                copied = (tmp_path / "restored" / "data" / path).read_bytes()
                assert copied == (tmp_path / "live" / "data" / path).read_bytes()
    finally:
        _drop_database(postgres_server, name)
