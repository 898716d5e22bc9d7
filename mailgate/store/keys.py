"""The installation's secret key, and the short keyed marks made with it that nobody else can."""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from hashlib import sha256
from pathlib import Path

from mailgate.config import Config, ConfigError
from mailgate.store.disk import sync_directory

KEY_BYTES = 32
MARK_LENGTH = 16  # hex digits: 64 bits, far past guessing by sending mail


def key_file(cfg: Config) -> Path:
    """`[security] secret_file`, else `secret.key` in the data directory."""
    return (
        Path(cfg.security.secret_file) if cfg.security.secret_file else cfg.data_dir / "secret.key"
    )


def load_key(path: Path) -> bytes:
    """The key in `path`, made on first use (random, readable by its owner only)."""
    if not path.exists():
        _create(path)
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the secret key: {exc}") from None
    if len(key) < KEY_BYTES:
        raise ConfigError(f"{path}: the secret key must hold {KEY_BYTES} bytes as hex digits")
    return key


def _create(path: Path) -> None:
    """Written whole under a temporary name, then linked: a process starting at the same
    moment reads either no file or the whole key, and the first link wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(KEY_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: its key stands
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    sync_directory(path.parent)


def mark(key: bytes, purpose: str, text: str) -> str:
    """A keyed hash of `text` for one purpose, lower-case hex (addresses lose their case)."""
    digest = hmac.new(key, f"{purpose}\0{text.lower()}".encode(), sha256).hexdigest()
    return digest[:MARK_LENGTH]


def is_marked(key: bytes, purpose: str, text: str, given: str) -> bool:
    return hmac.compare_digest(mark(key, purpose, text), given.lower())
