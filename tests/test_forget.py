"""`customers forget`: a person's data erased on request; tickets, counts and time stay."""

from __future__ import annotations

from sqlalchemy import MetaData, create_engine, select

from mailgate.store.blobs import blob_path
from tests.helpers import Clock
from tests.mailroom import AGENT, Mailroom, to
from tests.mails import make_mail
from tests.test_retention import console, failing_delivery, one_try

JANE, NAME = "jane.doe@acme.example", "Jane Doe"
BOB = "bob@beta.example"
SCAN = ("scan.png", "image/png", b"\x89PNG Jane's passport scan")


def everything_stored(db_url: str) -> list[tuple[str, str, str]]:
    """Every text and byte value in every table, as (table, column, value)."""
    engine = create_engine(db_url)
    meta = MetaData()
    meta.reflect(engine)
    found = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("utf-8", "replace")
                    if isinstance(value, str):
                        found.append((table.name, column, value))
    engine.dispose()
    return found


def naming(db_url: str, *words: str) -> list[tuple[str, str]]:
    """Where in the database any of the words appears (case-insensitive)."""
    lowered = [w.lower() for w in words]
    return sorted(
        {(t, c) for t, c, v in everything_stored(db_url) if any(w in v.lower() for w in lowered)}
    )


def jane_at_the_desk(room: Mailroom, clock: Clock) -> None:
    """Jane's request with a scan; Bob's request copying her; Anna's time on Jane's."""
    jane = f"{NAME} <{JANE}>"
    body = "My passport number is X123 and my phone +49 171 5555.\n"
    assert room.ingest(make_mail(sender=jane, body=body, attachments=(SCAN,))).startswith(
        "ticket CID-1000"
    )
    bob = make_mail(subject="Order 77 missing", sender=f"Bob <{BOB}>")
    assert room.ingest(bob.replace(b"To: support", f"Cc: {JANE}\r\nTo: support".encode()))
    # Anna copies Jane into Bob's ticket from now on.
    cc = make_mail(subject="[CID-1001] Re: Order 77", sender=AGENT, body=f"#cc {JANE}\nLooking.\n")
    assert room.ingest(cc) == "reply CID-1001"
    clock.advance(hours=1)
    booked = room.run("tickets", "time", "CID-1000", "45m", "--billable", "--agent", AGENT)
    assert booked.returncode == 0, booked.stderr
    room.new_mail()


def test_forget_without_yes_only_says_what_it_would_erase(room: Mailroom, clock: Clock) -> None:
    jane_at_the_desk(room, clock)
    before = room.show("CID-1000")
    result = room.run("customers", "forget", JANE)
    assert result.returncode == 0, result.stderr
    assert f"{JANE}: would erase contact 1's name and address (now forgotten-1)" in result.stdout
    assert "articles they wrote (text, attachments): 1" in result.stdout
    assert "tickets kept, with their status history and time: CID-1000, CID-1001" in result.stdout
    assert "nothing changed: add --yes to erase" in result.stdout
    planned = room.json("customers", "forget", JANE)
    assert (planned["erased"], planned["tickets"], planned["attachments"]) == (
        False,
        ["CID-1000", "CID-1001"],
        1,
    )
    assert room.show("CID-1000") == before


def test_the_console_script_forgets_and_refuses_the_unknown(room: Mailroom) -> None:
    room.ingest(make_mail(sender=JANE))
    unknown = console(room, "customers", "forget", "nobody@acme.example", "--yes")
    assert (unknown.returncode, unknown.stdout) == (65, "")
    assert unknown.stderr == "mailgate: no customer with the address 'nobody@acme.example'\n"
    done = console(room, "customers", "forget", JANE, "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{JANE}: erased contact 1's name and address")
    assert room.show("CID-1000")["requester"] == "forgotten-1"


def test_forget_erases_the_person_and_keeps_the_books(
    room: Mailroom, clock: Clock, db_url: str
) -> None:
    jane_at_the_desk(room, clock)
    scan = room.show("CID-1000")["articles"][0]["attachments"][0]["sha256"]
    assert naming(db_url, JANE, NAME, "X123")  # she is all over it before
    result = room.run("customers", "forget", JANE.upper(), "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{JANE}: erased contact 1's name and address")

    # Gone: her address, her name and what she wrote, everywhere in the database.
    assert naming(db_url, JANE, NAME, "X123", "passport") == []
    assert not blob_path(room.tmp_path / "data", scan).exists()
    # The copies of what was sent to her, or about tickets she took part in.
    assert list(room.sent_dir.glob("*.eml")) == []
    # Kept: her tickets, their articles (emptied), status history and time.
    ticket = room.show("CID-1000")
    assert (ticket["requester"], ticket["customer"]) == ("forgotten-1", "forgotten-1")
    assert ticket["subject"] == "Printer broken"
    (article,) = ticket["articles"]
    assert (article["text"], article["attachments"]) == ("", [])
    assert article["note"] == "erased on request on 2026-11-02"
    assert [e["action"] for e in ticket["events"]][:1] == ["created"]
    booked = room.json("tickets", "time", "CID-1000")
    assert booked["entries"][0]["minutes"] == 45
    bobs = room.show("CID-1001")
    assert bobs["articles"][0]["text"].strip() == "Our printer does not print."
    assert bobs["articles"][0]["cc"] == ["forgotten-1"]
    # One event says who was forgotten when, without the address.
    (event,) = room.json("retention", "log")
    assert (event["action"], event["detail"]) == ("customer_forgotten", "contact 1 forgotten")


def test_a_later_mail_from_the_address_is_a_new_stranger(room: Mailroom, clock: Clock) -> None:
    jane_at_the_desk(room, clock)
    assert room.run("customers", "forget", JANE, "--yes").returncode == 0
    clock.advance(days=1)
    assert room.ingest(make_mail(subject="Hello again", sender=JANE)) == "ticket CID-1002"
    new = room.show("CID-1002")
    assert (new["requester"], new["customer"]) == (JANE, JANE)
    (ack,) = to(room.new_mail(), JANE)
    assert "CID-1002" in str(ack["Subject"])
    # Naming her old ticket, she is a stranger to it: kept as an internal note, no answer.
    room.ingest(make_mail(subject="[CID-1000] Me again", sender=JANE))
    old = room.show("CID-1000")
    assert old["requester"] == "forgotten-1"
    assert [(a["direction"], a["note"]) for a in old["articles"]][1:] == [
        ("internal", "unverified sender: not part of this ticket")
    ]
    assert to(room.new_mail(), JANE) == []
    # Mail on Bob's ticket goes to Bob alone: nothing is written to the forgotten.
    answer = make_mail(subject="[CID-1001] Re: Order 77", sender=AGENT, body="Found it.\n")
    assert room.ingest(answer) == "reply CID-1001"
    (sent,) = room.new_mail()
    assert BOB in str(sent["To"]) and sent["Cc"] is None
    assert JANE not in sent.as_string()


def test_mail_to_her_that_failed_is_not_sent_again(room: Mailroom, clock: Clock) -> None:
    one_try(room)
    failing_delivery(room, make_mail(sender=JANE))
    (row,) = room.json("outbox", "list", "--status", "failed")
    assert room.run("customers", "forget", JANE, "--yes").returncode == 0
    retried = room.run("outbox", "retry", str(row["id"]))
    assert retried.returncode == 0
    assert f"{row['id']}: not requeued: erased on request on 2026-11-02" in retried.stdout
    assert "requeued 0" in retried.stdout
    (after,) = room.json("outbox", "list")
    assert after["to"] == ["forgotten-1"] and after["removed"] == "erased on request on 2026-11-02"
    assert "removed" in room.json("quarantine", "show", "1")


def test_an_unknown_address_is_a_clear_error(room: Mailroom) -> None:
    for address in ("nobody@acme.example", AGENT, "forgotten-1", "unverified-sender"):
        result = room.run("customers", "forget", address, "--yes")
        assert result.returncode == 65, address
        assert f"mailgate: no customer with the address {address!r}" in result.stderr
        assert "Traceback" not in result.stderr
