"""Servers the benchmarks start in processes of their own, and waiting for them to listen."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {timeout:.0f} s")


@contextmanager
def child(
    args: Sequence[str], port: int, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server in a process of its own, so the clients here do not share its CPU time."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=out)
    try:
        wait_for_port(port)
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def mailgate_toml(
    work: Path,
    port: int,
    *,
    name: str = "mailgate",
    database: str | None = None,
    sink: int | None = None,
    log_level: str = "warning",
    extra: str = "",
) -> Path:
    """A configuration for a benchmark's `mailgate run`: SQLite under `work` unless another
    database is given, outgoing mail to a sink relay (else to files), no hourly limit on
    acknowledgements (the generated senders write often), `extra` appended ([[imap]])."""
    from corpus import SUPPORT

    url = database or f"sqlite:///{work}/mailgate.db"
    outbound = (
        f'transport = "smtp"\nhost = "127.0.0.1"\nport = {sink}\n'
        if sink
        else f'transport = "file"\ndirectory = "{work}/sent"\n'
    )
    path = work / f"{name}.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n'
        f'[paths]\ndata_dir = "{work}/data"\n'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\naddresses = ["{SUPPORT}"]\n'
        "max_message_size = 104857600\n"
        f'[outbound]\n{outbound}from = "Support <{SUPPORT}>"\n'
        "[loops]\nmax_auto_mails_per_hour = 100000\nmax_auto_mails_per_hour_total = 1000000\n"
        '[http]\nlisten = ""\n'
        f'[logging]\nlevel = "{log_level}"\n' + extra,
        encoding="utf-8",
    )
    return path


def imap_block(name: str, port: int, username: str, password: str, **more: object) -> str:
    """An [[imap]] table for a mailbox on the throwaway Dovecot (plain IMAP on loopback)."""
    lines = [
        f'[[imap]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"',
        f'username = "{username}"\npassword = "{password}"',
        *(f"{key} = {value!r}" for key, value in more.items()),
    ]
    return "\n".join(lines) + "\n"


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user and system) a process and its children have used so far, read from
    /proc (Linux; NaN elsewhere). Children that ended are counted as their parent waited."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # Each thread's children: a thread may have started one (the fork server).
        children = [c for t in Path(f"/proc/{pid}/task").iterdir() for c in _children(t)]
    except OSError:
        return float("nan")
    # utime, stime, and the reaped children's cutime, cstime
    own = sum(int(f) for f in fields[11:15]) / tick
    return own + sum(tree_cpu_seconds(int(child)) for child in children)


def _children(task: Path) -> list[str]:
    try:
        return (task / "children").read_text().split()
    except OSError:  # the thread ended meanwhile
        return []
