"""A From that does not name exactly one clean address is nobody's: through `mailgate ingest`,
the file transport's sent mail and the command line, as an operator and Alice would see it.
By default such a mail is a ticket of an unverified sender; `[security] ambiguous_from =
"quarantine"` holds it instead."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import default
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


QUARANTINE = '[security]\nambiguous_from = "quarantine"\n'


def alice_desk(tmp_path: Path, extra: str = "") -> tuple[Path, str]:
    """Alice, a customer with one ticket; her acknowledgement already sent."""
    cfg = write_config(tmp_path, extra)
    said = ingest_raw(tmp_path, cfg, "alice", make_mail(sender=f"Alice <{ALICE}>", subject="VPN"))
    cid = said.split()[-1]
    assert cid.startswith("CID-") and sent(tmp_path)
    return cfg, cid


@pytest.fixture
def desk(tmp_path: Path) -> tuple[Path, str]:
    """Alice's desk under the default policy: an ambiguous From makes a ticket."""
    return alice_desk(tmp_path)


@pytest.fixture
def holding_desk(tmp_path: Path) -> tuple[Path, str]:
    """Alice's desk whose operator holds mail with an ambiguous From in quarantine."""
    return alice_desk(tmp_path, QUARANTINE)


def articles(cfg: Path, cid: str) -> list[dict[str, object]]:
    shown = mailgate("tickets", "show", cid, "--format", "json", config=cfg)
    return list(json.loads(shown.stdout)["articles"])


def tickets(cfg: Path, *args: str) -> list[dict[str, object]]:
    listed = mailgate("tickets", "list", *args, "--format", "json", config=cfg)
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def assert_unverified_ticket(cfg: Path, said: str, alice_cid: str, from_text: str) -> str:
    """The mail became a new ticket nobody known asked for, with the From shown as received;
    Alice's ticket and her list are as before. Returns the new ticket's tag."""
    assert "ticket CID-" in said and "(unverified sender)" in said, said
    new_cid = said.split("ticket ")[1].split()[0]
    assert new_cid != alice_cid
    assert len(articles(cfg, alice_cid)) == 1  # never her article
    (row,) = [t for t in tickets(cfg) if t["cid"] == new_cid]
    assert row["requester"] not in (ALICE, "attacker@evil.test")
    assert row["customer"] == "Unverified senders"
    assert new_cid in [t["cid"] for t in tickets(cfg, "--customer", "Unverified senders")]
    # Not among her tickets: her organisation (named after her address) has only hers.
    assert [t["cid"] for t in tickets(cfg, "--customer", ALICE)] == [alice_cid]
    (article,) = articles(cfg, new_cid)
    note = str(article["note"])
    assert note.startswith("unverified sender: From names no single clean address: ")
    assert from_text in note
    shown = mailgate("tickets", "show", new_cid, config=cfg)
    assert "unverified sender: From names no single clean address" in shown.stdout
    return new_cid


@pytest.mark.parametrize("sender", AMBIGUOUS)
@pytest.mark.parametrize("subject", ["Re: [{cid}] VPN", "list", "New problem"])
def test_an_ambiguous_from_is_a_ticket_of_an_unverified_sender(
    desk: tuple[Path, str], tmp_path: Path, sender: str, subject: str
) -> None:
    cfg, cid = desk
    before = sent(tmp_path)
    said = ingest_raw(tmp_path, cfg, "x", hostile(sender, subject.format(cid=cid)))
    assert_unverified_ticket(cfg, said, cid, sender)
    assert sent(tmp_path) == before  # nothing mailed: no acknowledgement, no list, no refusal
    held = json.loads(mailgate("quarantine", "list", "--format", "json", config=cfg).stdout)
    assert held == []


def test_staff_are_told_the_new_ticket_is_from_an_unverified_sender(tmp_path: Path) -> None:
    cfg, cid = alice_desk(tmp_path, '[staff]\nteam_address = "team@example.com"\n')
    before = sent(tmp_path)
    sender = f"x:{ALICE} <attacker@evil.test>"
    said = ingest_raw(tmp_path, cfg, "x", hostile(sender, "Invoice"))
    new_cid = assert_unverified_ticket(cfg, said, cid, sender)
    fresh = [p for p in sent(tmp_path) if p not in before]
    (notice,) = [message_from_bytes(p.read_bytes(), policy=default) for p in fresh]
    assert str(notice["To"]) == "team@example.com"
    assert str(notice["Subject"]) == f"[{new_cid}] New ticket: Invoice"
    text = str(notice.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert "unverified sender: From names no single clean address" in text
    assert sender in text
    assert "Message from an unverified sender:" in text


@pytest.mark.parametrize("sender", AMBIGUOUS)
@pytest.mark.parametrize("subject", ["Re: [{cid}] VPN", "list", "New problem"])
def test_an_ambiguous_from_is_never_alice_under_quarantine(
    holding_desk: tuple[Path, str], tmp_path: Path, sender: str, subject: str
) -> None:
    cfg, cid = holding_desk
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
    said = ingest_raw(tmp_path, cfg, "two", raw)
    assert_unverified_ticket(cfg, said, cid, f"Alice <{ALICE}>")
    new_cid = said.split("ticket ")[1].split()[0]
    assert "attacker@evil.test" in str(articles(cfg, new_cid)[0]["note"])  # both are shown
    assert len(sent(tmp_path)) == 1


def test_two_from_headers_are_held_under_quarantine(
    holding_desk: tuple[Path, str], tmp_path: Path
) -> None:
    cfg, cid = holding_desk
    raw = hostile(f"Alice <{ALICE}>", f"Re: [{cid}] VPN", extra_from="attacker@evil.test")
    assert "quarantined: ambiguous sender in From" in ingest_raw(tmp_path, cfg, "two", raw)
    assert len(articles(cfg, cid)) == 1 and len(sent(tmp_path)) == 1


def test_a_desk_that_rejects_unknown_senders_holds_it(tmp_path: Path) -> None:
    """Under `unknown_sender = "reject"` only known customers open tickets, and nobody can
    be refused here: the mail waits in quarantine for staff."""
    cfg, cid = alice_desk(tmp_path)  # Alice is known before the desk turns strict
    cfg.write_text(cfg.read_text() + '[customers]\nunknown_sender = "reject"\n')
    raw = hostile(f"{ALICE}, attacker@evil.test", "Invoice")
    assert "quarantined: ambiguous sender in From" in ingest_raw(tmp_path, cfg, "x", raw)
    assert [t["cid"] for t in tickets(cfg)] == [cid] and len(sent(tmp_path)) == 1


def test_a_bad_policy_names_the_key_and_the_file(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, '[security]\nambiguous_from = "drop"\n')
    result = mailgate("config", "check", config=cfg)
    assert result.returncode == 78
    assert f"{cfg}: security.ambiguous_from: 'drop' is not one of ticket | quarantine" in (
        result.stderr
    )


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
    holding_desk: tuple[Path, str], tmp_path: Path
) -> None:
    cfg, _ = holding_desk
    ingest_raw(tmp_path, cfg, "x", hostile(f"{ALICE}, attacker@evil.test", "Invoice"))
    refused = mailgate("quarantine", "release", "2", config=cfg)
    assert refused.returncode != 0 and "give --from ADDRESS" in refused.stderr
    released = mailgate("quarantine", "release", "2", "--from", "attacker@evil.test", config=cfg)
    assert released.returncode == 0, released.stderr
    assert len(sent(tmp_path)) == 1  # released quietly: nothing to either address


@pytest.mark.parametrize(
    ("policy", "outcome"), [("ticket", "(unverified sender)"), ("quarantine", "quarantined")]
)
def test_an_ambiguous_from_naming_an_agent_commands_nothing(
    tmp_path: Path, policy: str, outcome: str
) -> None:
    cfg = write_config(
        tmp_path, f'[security]\nagent_verification = "none"\nambiguous_from = "{policy}"\n'
    )
    assert (
        mailgate("agents", "add", "anna@example.com", "--name", "Anna", config=cfg).returncode == 0
    )
    cid = ingest_raw(tmp_path, cfg, "a", make_mail(sender=ALICE, subject="VPN")).split()[-1]
    for n, sender in enumerate(["anna@example.com, attacker@evil.test", "<anna@example.com>x"]):
        raw = hostile(sender, f"Re: [{cid}] VPN").replace(b"ok\n", b"#status closed\n\nDone.\n")
        assert outcome in ingest_raw(tmp_path, cfg, f"x{n}", raw)
    shown = json.loads(mailgate("tickets", "show", cid, "--format", "json", config=cfg).stdout)
    assert shown["status"] == "open" and len(shown["articles"]) == 1
    assert len(sent(tmp_path)) == 1  # Alice's acknowledgement only
