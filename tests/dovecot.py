"""A throwaway Dovecot for the IMAP tests: one server per session, a fresh user per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.helpers import free_port

# Clients that connect to this address see a server without MOVE and IDLE: the fallbacks
# (COPY + \Deleted + EXPUNGE, polling) are tested against the same Dovecot.
PLAIN_HOST = "127.0.0.1"
BASIC_HOST = "127.0.0.2"
PORT_ATTEMPTS = 3  # Dovecot started on new ports when the ones found free were taken
BASIC_CAPABILITIES = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE UIDPLUS"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailgate-test-{tag}
protocols = imap
listen = {plain}, {basic}
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
mail_location = maildir:{root}/mail/%u
mail_max_userip_connections = 100
# Any user name logs in with the one password: a fresh mailbox per test needs no reload
# (a passwd-file is re-read only when its mtime changes, second by second).
passdb {{
  driver = static
  args = password={password}
}}
{oauth_passdb}userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
# Without this one failed login makes every later login wait for seconds.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
local {basic} {{
  protocol imap {{
    imap_capability = {capabilities}
  }}
}}
"""


# XOAUTH2 and OAUTHBEARER: the token is checked by the identity provider's introspection
# endpoint; the answer's "username" must be the user logging in.
OAUTH_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
"""
OAUTH_SETTINGS = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


@dataclass(frozen=True)
class ImapUser:
    """One mailbox on the test server."""

    server: Dovecot
    name: str
    password: str

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        return self.server.doveadm(*args, stdin=stdin)

    def client(self, host: str = PLAIN_HOST) -> IMAPClient:
        client = IMAPClient(host, self.server.port, ssl=False, timeout=10)
        try:
            client.login(self.name, self.password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def append(self, *raws: bytes, folder: str = "INBOX") -> None:
        """APPEND as a mail client (or a delivery over IMAP) would."""
        with self.client() as client:
            for raw in raws:
                client.append(folder, raw)

    def folder(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        """UID to flags of every message in a folder; empty when the folder is missing."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            flags = client.get_flags(client.search("ALL"))
            return {uid: tuple(f) for uid, f in flags.items()}

    def save(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a message the way a local delivery agent would."""
        self.doveadm("save", "-u", self.name, "-m", folder, stdin=raw)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        out = self.doveadm(
            "-f", "flow", "mailbox", "status", "-u", self.name, "uidvalidity", folder
        )
        return int(out.strip().split("=", 1)[1])

    def set_uidvalidity(self, value: int, folder: str = "INBOX") -> None:
        self.doveadm("mailbox", "update", "-u", self.name, "--uid-validity", str(value), folder)

    def kick(self) -> None:
        """Drop every IMAP connection of this user, as a crashing server would."""
        self.doveadm("kick", self.name)


class Dovecot:
    """A Dovecot instance under a temporary directory, listening on free local ports."""

    def __init__(self, oauth_introspection_url: str = "") -> None:
        # Dovecot's unprivileged processes must traverse the directory: not pytest's 0700 tmp.
        self.root = Path(tempfile.mkdtemp(prefix="mailgate-dovecot-", dir="/tmp"))
        self.root.chmod(0o755)
        self.port, self.tls_port = free_port(), free_port()
        self.conf = self.root / "dovecot.conf"
        self.password = uuid.uuid4().hex
        self.process: subprocess.Popen[bytes] | None = None
        # Set: logins by OAuth token too, checked at this URL (besides the one password).
        self.oauth_introspection_url = oauth_introspection_url

    @property
    def cert(self) -> Path:
        return self.root / "cert.pem"

    def start(self) -> None:
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(mode=0o755)
        for sub in ("mail", "home"):
            shutil.chown(self.root / sub, "nobody", "nogroup")
        self._make_certificate()
        oauth = self.oauth_introspection_url
        if oauth:
            (self.root / "oauth2.conf.ext").write_text(OAUTH_SETTINGS.format(url=oauth))
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._listen()
                return
            except RuntimeError:
                # A port found free may be taken before Dovecot binds it: another test's
                # connection to 127.0.0.2 gets it as its own end. Then other ports.
                if "Address already in use" not in self.log() or attempt + 1 == PORT_ATTEMPTS:
                    raise
                self.stop_process()
                for log in ("stderr.log", "dovecot.log"):
                    (self.root / log).unlink(missing_ok=True)
                self.port, self.tls_port = free_port(), free_port()

    def _listen(self) -> None:
        """Dovecot on self.port and self.tls_port, once it greets on both hosts."""
        oauth = self.oauth_introspection_url
        self.conf.write_text(
            CONFIG.format(
                root=self.root,
                tag=self.root.name,
                plain=PLAIN_HOST,
                basic=BASIC_HOST,
                port=self.port,
                tls_port=self.tls_port,
                capabilities=BASIC_CAPABILITIES,
                password=self.password,
                mechanisms="plain login xoauth2 oauthbearer" if oauth else "plain login",
                oauth_passdb=OAUTH_PASSDB.format(root=self.root) if oauth else "",
            )
        )
        with open(self.root / "stderr.log", "wb") as stderr:
            self.process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        for host in (PLAIN_HOST, BASIC_HOST):
            self._wait_for_greeting(host, self.port)

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", str(self.root / "key.pem"), "-out", str(self.cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def _wait_for_greeting(self, host: str, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            try:
                with socket.create_connection((host, port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not greet on {host}:{port}: {self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        parts = [self.root / "stderr.log", self.root / "dovecot.log"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def stop(self) -> None:
        self.stop_process()
        shutil.rmtree(self.root, ignore_errors=True)

    def stop_process(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(
            ["doveadm", "-c", str(self.conf), *args], input=stdin, capture_output=True, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)}: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def add_user(self) -> ImapUser:
        return ImapUser(self, f"u{uuid.uuid4().hex[:10]}", self.password)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if shutil.which("dovecot") is None:
        pytest.fail("dovecot is not installed (scripts/test installs dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.fail("the Dovecot fixture runs dovecot as root (it drops privileges itself)")
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_user(dovecot: Dovecot) -> ImapUser:
    return dovecot.add_user()
