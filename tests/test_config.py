"""Configuration: where it comes from, and errors that name the key and the file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailgate.config import Config, ConfigError, load, parse_config

REPO = Path(__file__).resolve().parents[1]


def test_example_file_documents_every_default() -> None:
    example = parse_config((REPO / "mailgate.toml.example").read_text("utf-8"), "example")
    assert dataclasses.replace(example, source=Config().source) == Config()


def test_no_file_means_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILGATE_CONFIG", raising=False)
    cfg = load(None)
    assert cfg == Config()
    assert (cfg.database.url, cfg.smtp.listen, cfg.smtp.addresses, cfg.outbound.transport) == (
        "sqlite:///var/mailgate.db",
        "127.0.0.1:2525",
        ["@localhost"],
        "file",
    )


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mailgate.toml").write_text('[tickets]\nprefix = "LOCAL"\n')
    (tmp_path / "env.toml").write_text('[tickets]\nprefix = "ENV"\n')
    (tmp_path / "arg.toml").write_text('[tickets]\nprefix = "ARG"\n')
    monkeypatch.delenv("MAILGATE_CONFIG", raising=False)
    assert load(None).tickets.prefix == "LOCAL"
    monkeypatch.setenv("MAILGATE_CONFIG", str(tmp_path / "env.toml"))
    assert load(None).tickets.prefix == "ENV"
    assert load(tmp_path / "arg.toml").tickets.prefix == "ARG"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[smtp]\nlisten_port = 25\n", "f.toml: smtp.listen_port: unknown key"),
        ("[nonsense]\n", "f.toml: nonsense: unknown key"),
        ('[smtp]\nmax_message_size = "big"\n', "f.toml: smtp.max_message_size: expected int"),
        ('[smtp]\naddresses = "a@b"\n', "f.toml: smtp.addresses: expected a list"),
        ('[smtp]\nlisten = "nowhere"\n', "f.toml: smtp.listen: 'nowhere' is not HOST:PORT"),
        ('[outbound]\ntransport = "pigeon"\n', "f.toml: outbound.transport: 'pigeon' is not one"),
        (
            "[outbound]\nmax_message_size = 1000\n",
            "f.toml: outbound.max_message_size: must be at least 65536",
        ),
        ("[[imap]]\nport = true\n", "f.toml: imap[0].port: expected int, got bool"),
        ("[[imap]]\nbogus = 1\n", "f.toml: imap[0].bogus: unknown key"),
        ("[database\n", "f.toml: not valid TOML"),
        ('[web]\nlisten = "8025"\n', "f.toml: web.listen: '8025' is not HOST:PORT"),
        ('[web]\nbase_url = "desk.example.com"\n', "f.toml: web.base_url: 'desk.example.com' is"),
        ("[web]\nlink_minutes = 0\n", "f.toml: web.link_minutes, web.session_days and web"),
        ("[web]\nport = 8025\n", "f.toml: web.port: unknown key"),
    ],
)
def test_errors_name_key_and_file(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "f.toml")
    assert str(caught.value).startswith(message)


def test_integer_accepted_where_seconds_are_float() -> None:
    assert parse_config("[database]\nbusy_timeout = 2\n", "f").database.busy_timeout == 2.0
