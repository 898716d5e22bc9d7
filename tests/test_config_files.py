"""Where the configuration is found, what its relative paths mean, secrets kept in files and
systemd credentials, and commands that only read never making a database of their own."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from alembic import command
from alembic.config import Config as AlembicConfig

from mailgate.config import load
from mailgate.intake.imap import ImapIntake
from mailgate.service.app import build_context
from mailgate.store.database import MIGRATIONS, Store
from tests.daemon_harness import free_port
from tests.dovecot import PLAIN_HOST, ImapUser, dovecot, imap_user
from tests.mails import make_mail
from tests.test_cli import mailgate, write_config
from tests.test_imap import Recorder

__all__ = ["dovecot", "imap_user"]  # fixtures, used by name

READ_ONLY = [
    ("tickets", "list"),
    ("tickets", "show", "CID-1000"),
    ("stats",),
    ("export", "--output", "tickets.csv"),
    ("report", "time"),
    ("customers", "list"),
    ("customers", "show", "Acme"),
    ("outbox", "list"),
    ("quarantine", "list"),
    ("quarantine", "show", "1"),
    ("agents", "list"),
]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: bytes = b"") -> Any:
    """The console script as an operator starts it: in a folder of their choosing."""
    return subprocess.run(
        [sys.executable, "-m", "mailgate", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def no_config_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "MAILGATE_CONFIG"}


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_never_create_a_database(tmp_path: Path, command: tuple[str]) -> None:
    """Run in a folder without a configuration: the embedded default's database is named,
    and nothing is made."""
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", *command],
        capture_output=True,
        cwd=tmp_path,
        env=no_config_env(),
        timeout=60,
    )
    assert done.returncode == 78, done.stderr
    stderr = done.stderr.decode()
    assert f"no database at {tmp_path}/var/mailgate.db" in stderr
    assert "embedded default; no -c, $MAILGATE_CONFIG, ./mailgate.toml" in stderr
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_read_only_command_names_the_configured_database(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    result = mailgate("tickets", "list", config=cfg)
    assert result.returncode == 78
    assert f"no database at {tmp_path}/mg.db (database.url of {cfg})" in result.stderr
    assert not (tmp_path / "mg.db").exists()


def test_read_only_command_leaves_an_old_schema_to_db_upgrade(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    migrated_to(f"sqlite:///{tmp_path}/mg.db", "0012")  # as an older mailgate left it
    result = mailgate("tickets", "list", config=cfg)
    assert result.returncode == 78
    assert "schema is at 0012" in result.stderr and "run `mailgate db upgrade`" in result.stderr
    with sqlite3.connect(tmp_path / "mg.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0012",)
    db.close()
    # Writing commands still bring a SQLite database up to date themselves.
    assert mailgate("agents", "add", "a@example.com", "--name", "A", config=cfg).returncode == 0
    assert mailgate("tickets", "list", config=cfg).returncode == 0


def migrated_to(url: str, revision: str) -> None:
    store = Store(url)
    alembic = AlembicConfig()
    alembic.set_main_option("script_location", str(MIGRATIONS))
    alembic.attributes["engine"] = store.engine
    command.upgrade(alembic, revision)
    store.dispose()


def test_relative_paths_are_relative_to_the_configuration_file(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "mailgate.toml").write_text(
        '[database]\nurl = "sqlite:///db/mailgate.db"\n'
        '[paths]\ndata_dir = "data"\n'
        '[smtp]\naddresses = ["support@example.com"]\n'
        '[outbound]\ntransport = "file"\ndirectory = "./sent"\n'
        'from = "Support <support@example.com>"\n',
        encoding="utf-8",
    )
    done = run("-c", "../etc/mailgate.toml", "ingest", "-", cwd=elsewhere, stdin=make_mail())
    assert done.returncode == 0, done.stderr
    assert (folder / "db" / "mailgate.db").is_file()
    assert len(list((folder / "sent").glob("*.eml"))) == 1  # the acknowledgement
    assert (folder / "data" / "secret.key").is_file()
    assert list(elsewhere.iterdir()) == []
    listed = run("-c", str(folder / "mailgate.toml"), "tickets", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "CID-1000" in listed.stdout.decode()


def test_environment_names_the_file_before_the_working_directory(tmp_path: Path) -> None:
    local, named = tmp_path / "local", tmp_path / "named"
    local.mkdir()
    named.mkdir()
    write_config(local, '[tickets]\nprefix = "LOCAL"\n')
    write_config(named, '[tickets]\nprefix = "NAMED"\n')
    env = {"MAILGATE_CONFIG": str(named / "mailgate.toml")}
    done = run("ingest", "-", cwd=local, env=env, stdin=make_mail())
    assert done.stdout.decode().strip() == "-: ticket NAMED-1000"
    done = run("ingest", "-", cwd=local, env=no_config_env(), stdin=make_mail(subject="2"))
    assert done.stdout.decode().strip() == "-: ticket LOCAL-1000"


def in_private_etc(tmp_path: Path, toml: str, script: str) -> subprocess.CompletedProcess[bytes]:
    """`script` run where /etc/mailgate/mailgate.toml holds `toml`, in a mount namespace of
    its own: the machine's /etc is left alone (an overlay only this process sees)."""
    layer = Path(tempfile.mkdtemp(dir=tmp_path))
    upper, work = layer / "upper", layer / "work"
    (upper / "mailgate").mkdir(parents=True)
    work.mkdir()
    (upper / "mailgate" / "mailgate.toml").write_text(toml, encoding="utf-8")
    mount = f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc"
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"{mount} && {script}"],
        capture_output=True,
        cwd=tmp_path,
        env=no_config_env(),
        timeout=60,
    )


def test_the_system_file_is_found_last(tmp_path: Path) -> None:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a private /etc")
    probe = in_private_etc(tmp_path, "", "true")
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode().strip()}")
    state = tmp_path / "state"
    state.mkdir()
    toml = write_config(state, '[tickets]\nprefix = "SYSTEM"\n').read_text(encoding="utf-8")
    mailgate_cmd = f"{sys.executable} -m mailgate"
    work = tmp_path / "cwd"
    work.mkdir()
    done = in_private_etc(
        tmp_path, toml, f"cd {work} && {mailgate_cmd} ingest - < {_mail_file(tmp_path)}"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == "-: ticket SYSTEM-1000"
    write_config(work, '[tickets]\nprefix = "LOCAL"\n')
    done = in_private_etc(
        tmp_path, toml, f"cd {work} && {mailgate_cmd} ingest - < {_mail_file(tmp_path, '2')}"
    )
    assert done.stdout.decode().strip() == "-: ticket LOCAL-1000"


def _mail_file(tmp_path: Path, subject: str = "1") -> Path:
    path = tmp_path / f"mail-{subject}.eml"
    path.write_bytes(make_mail(subject=subject))
    return path


def test_imap_password_from_a_systemd_credential(
    tmp_path: Path, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "imap-password").write_text(imap_user.password + "\n")
    cfg = write_config(
        tmp_path,
        f'[[imap]]\nhost = "{PLAIN_HOST}"\nport = {imap_user.server.port}\nsecurity = "none"\n'
        f'username = "{imap_user.name}"\npassword_file = "imap-password"\n',
    )
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = load(cfg)
    assert config.imap[0].password_file == str(credentials / "imap-password")
    imap_user.append(make_mail())
    ctx = build_context(config)
    try:
        assert ImapIntake(ctx, config.imap[0], Recorder()).poll_once() == 1
    finally:
        ctx.store.dispose()


def test_without_credentials_a_bare_name_is_beside_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    cfg = write_config(tmp_path, '[[imap]]\npassword_file = "imap-password"\n')
    assert load(cfg).imap[0].password_file == str(tmp_path / "imap-password")


class Relay:
    """An SMTP relay that takes mail only after AUTH with one password."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.received: list[bytes] = []

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
    ) -> AuthResult:
        ok = isinstance(auth, LoginPassword) and auth.password == self.password
        return AuthResult(success=ok)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        return "250 2.0.0 queued"


@pytest.fixture
def authenticating_relay() -> Iterator[tuple[Relay, int]]:
    relay, port = Relay("s3cret relay"), free_port()
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=port,
        authenticator=relay.authenticate,
        auth_required=True,
        auth_require_tls=False,  # on loopback, for the test only
        ready_timeout=5.0,
    )
    controller.start()
    try:
        yield relay, port
    finally:
        controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_relay_password_from_a_file(
    tmp_path: Path, authenticating_relay: tuple[Relay, int]
) -> None:
    relay, port = authenticating_relay
    (tmp_path / "relay.secret").write_text("s3cret relay\n")
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text().replace(
            'transport = "file"',
            f'transport = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
            'username = "mailgate"\npassword_file = "relay.secret"',
        )
    )
    assert mailgate("ingest", str(_mail_file(tmp_path)), config=cfg).returncode == 0
    assert len(relay.received) == 1  # the acknowledgement, sent after AUTH
    listed = json.loads(mailgate("outbox", "list", "--format", "json", config=cfg).stdout)
    assert [row["status"] for row in listed] == ["sent"]


@pytest.mark.parametrize("key", ["database", "outbound"])
def test_missing_secret_file_names_the_key(tmp_path: Path, key: str) -> None:
    cfg = write_config(tmp_path, "")
    text = cfg.read_text().replace(f"[{key}]\n", f'[{key}]\npassword_file = "gone.secret"\n')
    cfg.write_text(text)
    result = mailgate("tickets", "list", config=cfg)
    assert result.returncode == 78
    assert f"{key}.password_file: cannot read {tmp_path}/gone.secret" in result.stderr
