"""A From that does not name exactly one clean address is nobody's: through `mailgate ingest`,
the file transport's sent mail and the command line, as an operator and Alice would see it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mails import make_mail
from tests.test_cli import mailgate, write_config

ALICE = "alice@customer.test"

AMBIGUOUS = [
    f"<{ALICE}>@evil.test",
    f"{ALICE}, attacker@evil.test",
    f"x:{ALICE} <attacker@evil.test>",
    f"Customers: {ALICE};",
    f"<{ALICE}> <attacker@evil.test>",
    f"{ALICE} <attacker@evil.test>",
    f"Alice <{ALICE}>x",
]


def sent(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "sent").glob("*.eml"))


def ingest_raw(tmp_path: Path, cfg: Path, name: str, raw: bytes) -> str:
    path = tmp_path / f"{name}.eml"
    path.write_bytes(raw)
    result = mailgate("ingest", str(path), config=cfg)
    assert result.returncode == 0, result.stderr
    return result.stdout


def hostile(sender: str, subject: str, extra_from: str = "") -> bytes:
    """make_mail would fold the From into a valid header: the header is written as it is."""
    raw = make_mail(sender="placeholder@example.net", subject=subject, body="ok\n")
    header = f"From: {sender}\r\n" + (f"From: {extra_from}\r\n" if extra_from else "")
    return raw.replace(b"From: placeholder@example.net\r\n", header.encode())


@pytest.fixture
def desk(tmp_path: Path) -> tuple[Path, str]:
    """Alice, a customer with one ticket; her acknowledgement already sent."""
    cfg = write_config(tmp_path)
    said = ingest_raw(tmp_path, cfg, "alice", make_mail(sender=f"Alice <{ALICE}>", subject="VPN"))
    cid = said.split()[-1]
    assert cid.startswith("CID-") and len(sent(tmp_path)) == 1
    return cfg, cid


def articles(cfg: Path, cid: str) -> list[dict[str, object]]:
    shown = mailgate("tickets", "show", cid, "--format", "json", config=cfg)
    return list(json.loads(shown.stdout)["articles"])


@pytest.mark.parametrize("sender", AMBIGUOUS)
@pytest.mark.parametrize("subject", ["Re: [{cid}] VPN", "list", "New problem"])
def test_an_ambiguous_from_is_never_alice(
    desk: tuple[Path, str], tmp_path: Path, sender: str, subject: str
) -> None:
    cfg, cid = desk
    before = sent(tmp_path)
    said = ingest_raw(tmp_path, cfg, "x", hostile(sender, subject.format(cid=cid)))
    assert "quarantined: ambiguous sender in From" in said
    assert len(articles(cfg, cid)) == 1  # never her article
    listed = json.loads(mailgate("tickets", "list", "--format", "json", config=cfg).stdout)
    assert [t["cid"] for t in listed] == [cid]  # no ticket in her name either
    assert sent(tmp_path) == before  # nothing mailed: no acknowledgement, no list, no refusal
    held = json.loads(mailgate("quarantine", "list", "--format", "json", config=cfg).stdout)
    assert [row["from"] for row in held] == [""]  # the address it names is not taken as hers


def test_two_from_headers_are_ambiguous(desk: tuple[Path, str], tmp_path: Path) -> None:
    cfg, cid = desk
    raw = hostile(f"Alice <{ALICE}>", f"Re: [{cid}] VPN", extra_from="attacker@evil.test")
    assert "quarantined: ambiguous sender in From" in ingest_raw(tmp_path, cfg, "two", raw)
    assert len(articles(cfg, cid)) == 1 and len(sent(tmp_path)) == 1


@pytest.mark.parametrize(
    "sender",
    [f"Alice <{ALICE}>", f'"Kunde, Alice" <{ALICE}>', f"{ALICE} (Alice)", f"<{ALICE}>", ALICE],
)
def test_a_clean_from_is_still_alice(desk: tuple[Path, str], tmp_path: Path, sender: str) -> None:
    cfg, cid = desk
    said = ingest_raw(tmp_path, cfg, "reply", hostile(sender, f"Re: [{cid}] VPN"))
    assert said.endswith(f"reply {cid}\n")
    assert len(articles(cfg, cid)) == 2


def test_release_of_an_ambiguous_from_needs_the_address(
    desk: tuple[Path, str], tmp_path: Path
) -> None:
    cfg, _ = desk
    ingest_raw(tmp_path, cfg, "x", hostile(f"{ALICE}, attacker@evil.test", "Invoice"))
    refused = mailgate("quarantine", "release", "2", config=cfg)
    assert refused.returncode != 0 and "give --from ADDRESS" in refused.stderr
    released = mailgate("quarantine", "release", "2", "--from", "attacker@evil.test", config=cfg)
    assert released.returncode == 0, released.stderr
    assert len(sent(tmp_path)) == 1  # released quietly: nothing to either address


def test_an_ambiguous_from_naming_an_agent_commands_nothing(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, '[security]\nagent_verification = "none"\n')
    assert (
        mailgate("agents", "add", "anna@example.com", "--name", "Anna", config=cfg).returncode == 0
    )
    cid = ingest_raw(tmp_path, cfg, "a", make_mail(sender=ALICE, subject="VPN")).split()[-1]
    for n, sender in enumerate(["anna@example.com, attacker@evil.test", "<anna@example.com>x"]):
        raw = hostile(sender, f"Re: [{cid}] VPN").replace(b"ok\n", b"#status closed\n\nDone.\n")
        assert "quarantined: ambiguous sender" in ingest_raw(tmp_path, cfg, f"x{n}", raw)
    shown = json.loads(mailgate("tickets", "show", cid, "--format", "json", config=cfg).stdout)
    assert shown["status"] == "open" and len(shown["articles"]) == 1
    assert len(sent(tmp_path)) == 1  # Alice's acknowledgement only
