"""Hostile and automatic mail, one row each: the exact outcome and every mail that went out."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from mailgate.cli import run_cli
from mailgate.config import SmtpConfig, TicketsConfig
from mailgate.flows import pipeline
from mailgate.flows.pipeline import Outcome
from mailgate.outbound.compose import make_message_id
from mailgate.outbound.context import Context
from mailgate.reading.mime.limits import MAX_PARTS, check_raw
from mailgate.reading.parse import parse
from mailgate.store.models import Article, Attachment, Contact, Intake, Ticket
from mailgate.store.spool import stored_raw
from tests.helpers import ingest, outbox, parsed, tickets
from tests.mails import make_mail, new_message_id

ACK = ("acknowledgement", "alice@acme.example")
H = "From: Alice <alice@acme.example>\r\nTo: support@example.com\r\nSubject: Help\r\n"

Raw = Callable[[Context], bytes]
Check = Callable[[Context, Outcome], None]


@dataclass(frozen=True)
class Case:
    id: str
    raw: Raw
    outcome: str  # Outcome.describe()
    mails: tuple[tuple[str, str], ...] = ()  # (template, recipients) of the whole outbox
    setup: Callable[[Context], Context] | None = None  # may return a changed context
    check: Check | None = None


def mail(**kwargs: object) -> Raw:
    raw = make_mail(**kwargs)  # type: ignore[arg-type]
    return lambda _ctx: raw


def header(name: str, value: str) -> Raw:
    return mail(headers={name: value})


def sender(address: str) -> Raw:
    return mail(sender=address)


def literal(text: str | bytes) -> Raw:
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    return lambda _ctx: data


# --- builders for the structural attacks ------------------------------------------------------


def nested(levels: int) -> bytes:
    inner = b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    for i in range(levels):
        inner = b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n%s\r\n--b%d--\r\n" % (
            i,
            i,
            inner,
            i,
        )
    return H.encode() + b"Message-ID: <deep@acme.example>\r\nMIME-Version: 1.0\r\n" + inner


def many_parts(count: int) -> bytes:
    head = H + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
    parts = "".join(
        f"--zz\r\nContent-Type: application/octet-stream; name=f{i}.bin\r\n\r\nx\r\n"
        for i in range(count)
    )
    return (head + parts + "--zz--\r\n").encode()


def dsn(message_id: str, action: str = "failed", status: str = "5.1.1") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        "To: support@example.com\r\nSubject: Delivery Status Notification\r\n"
        f"Message-ID: <{new_message_id('mx.example.com')}>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nReport.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; alice@acme.example\r\nAction: {action}\r\n"
        f"Status: {status}\r\n\r\n"
        "--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{message_id}>\r\nSubject: [CID-1000] Printer broken\r\n\r\n--R--\r\n"
    ).encode()


def attachment(name: str) -> Raw:
    return mail(attachments=((name, "application/octet-stream", b"MZ payload"),))


# --- setups and checks ------------------------------------------------------------------------


def first_ticket(ctx: Context) -> Context:
    ingest(ctx, make_mail())
    return ctx


def ack_id(ctx: Context) -> str:
    return outbox(ctx)[0].message_id


def closed_ticket(days_ago: float) -> Callable[[Context], Context]:
    def setup(ctx: Context) -> Context:
        ingest(ctx, make_mail())
        with ctx.store.session() as session:
            ticket = session.exec(select(Ticket)).one()
            ticket.status = "closed"
            ticket.updated_at = ctx.clock() - timedelta(days=days_ago)
            session.add(ticket)
        return ctx

    return setup


def domain_served(ctx: Context) -> Context:
    smtp = dataclasses.replace(ctx.config.smtp, addresses=["@example.com"])
    assert isinstance(smtp, SmtpConfig)
    return dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, smtp=smtp))


def new_ticket_policy(ctx: Context) -> Context:
    ctx = first_ticket(ctx)
    tickets_cfg = dataclasses.replace(ctx.config.tickets, unverified_tag_policy="new-ticket")
    assert isinstance(tickets_cfg, TicketsConfig)
    return dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, tickets=tickets_cfg))


def stored_names(*expected: str) -> Check:
    def check(ctx: Context, _outcome: Outcome) -> None:
        with ctx.store.session() as session:
            names = [a.filename for a in session.exec(select(Attachment))]
        assert names == list(expected)

    return check


def last_article(ctx: Context) -> Article:
    with ctx.store.session() as session:
        return session.exec(select(Article).order_by(col(Article.id).desc())).first()  # type: ignore[return-value]


def article_is(direction: str, note: str) -> Check:
    def check(ctx: Context, _outcome: Outcome) -> None:
        article = last_article(ctx)
        assert (article.direction, article.note) == (direction, note)

    return check


def alice_failing(expected: bool) -> Check:
    def check(ctx: Context, outcome: Outcome) -> None:
        article_is("system", "delivery failure report")(ctx, outcome)
        with ctx.store.session() as session:
            alice = session.exec(select(Contact).where(Contact.email == "alice@acme.example"))
            assert alice.one().failing is expected

    return check


def sanitised_html(ctx: Context, _outcome: Outcome) -> None:
    html = last_article(ctx).html or ""
    assert "Hello" in html
    assert "<script" not in html.lower() and "onerror" not in html.lower()


def one_line_subject(ctx: Context, _outcome: Outcome) -> None:
    ack = parsed(outbox(ctx)[-1].raw)
    assert ack["Bcc"] is None and "\n" not in str(ack["Subject"])
    assert str(ack["Subject"]).startswith("[CID-1000] Hi")


def ack_quotes_no_other_ticket(ctx: Context, _outcome: Outcome) -> None:
    ack = outbox(ctx)[-1]
    assert ack.subject.startswith("[CID-1001]") and "CID-1000" not in ack.raw.decode()


def served_as(address: str) -> Check:
    def check(ctx: Context, _outcome: Outcome) -> None:
        assert tickets(ctx)[0].served_address == address

    return check


def defects_include(*names: str) -> Check:
    def check(ctx: Context, outcome: Outcome) -> None:
        with ctx.store.session() as session:
            intake = session.get(Intake, outcome.intake_id)
            assert intake is not None
            assert set(names) <= set(parse(stored_raw(session, intake.id or 0)).defects)

    return check


def one_ticket(ctx: Context, _outcome: Outcome) -> None:
    assert [t.number for t in tickets(ctx)] == [1000]
    with ctx.store.session() as session:
        assert len(list(session.exec(select(Article)))) == 1


LOOP_OWN = "ignored: loop: sent from our own address support@example.com"

CASES = [
    # automatic mail: a ticket, never an acknowledgement
    Case(
        "auto-submitted-auto-replied", header("Auto-Submitted", "auto-replied"), "ticket CID-1000"
    ),
    Case(
        "auto-submitted-auto-generated",
        header("Auto-Submitted", "auto-generated"),
        "ticket CID-1000",
    ),
    Case("auto-submitted-no", header("Auto-Submitted", "no"), "ticket CID-1000", (ACK,)),
    Case("precedence-bulk", header("Precedence", "bulk"), "ticket CID-1000"),
    Case("precedence-junk", header("Precedence", "junk"), "ticket CID-1000"),
    Case("precedence-list", header("Precedence", "list"), "ticket CID-1000"),
    Case("list-id", header("List-Id", "<news.acme.example>"), "ticket CID-1000"),
    Case(
        "list-unsubscribe", header("List-Unsubscribe", "<mailto:u@acme.example>"), "ticket CID-1000"
    ),
    Case("x-auto-response-suppress", header("X-Auto-Response-Suppress", "All"), "ticket CID-1000"),
    # MAILER-DAEMON writes nothing but reports: a bounce, however plain, never a ticket
    Case(
        "mailer-daemon",
        sender("MAILER-DAEMON@acme.example"),
        "ignored: bounce about no ticket of ours",
    ),
    Case("postmaster", sender("postmaster@acme.example"), "ticket CID-1000"),
    Case("no-reply", sender("no-reply@acme.example"), "ticket CID-1000"),
    Case("noreply", sender("noreply@acme.example"), "ticket CID-1000"),
    Case("do-not-reply", sender("do-not-reply@acme.example"), "ticket CID-1000"),
    Case("bounce-sender", sender("bounce@acme.example"), "ticket CID-1000"),
    # our own mail: a loop, nothing stored as a ticket
    Case("own-from", sender("Support <support@example.com>"), LOOP_OWN),
    Case(
        "own-message-id",
        lambda ctx: make_mail(
            message_id=make_message_id(1000, "example.com", ctx.secret_key).strip("<>")
        ),
        "ignored: loop: carries our own Message-ID",
    ),
    # what anyone can write: our Message-ID's shape without its mark, X-Loop with our address
    Case(
        "message-id-of-our-shape",
        mail(message_id="mailgate.1000.abc.0123456789abcdef@example.com"),
        "ticket CID-1000",
        (ACK,),
    ),
    Case("x-loop-own-address", header("X-Loop", "support@example.com"), "ticket CID-1000", (ACK,)),
    # another system's X-Loop: mail a machine passed on, stored but not answered
    Case("x-loop-other-system", header("X-Loop", "helpdesk@acme.example"), "ticket CID-1000"),
    # bounces and delivery reports
    Case(
        "dsn-known-ticket",
        lambda ctx: dsn(ack_id(ctx)),
        "reply CID-1000",
        (ACK,),
        first_ticket,
        alice_failing(True),
    ),
    Case(
        "dsn-unknown",
        literal(dsn("x@elsewhere.example")),
        "ignored: bounce about no ticket of ours",
    ),
    Case(
        "dsn-delay-warning",
        lambda ctx: dsn(ack_id(ctx), "delayed", "4.4.7"),
        "reply CID-1000",
        (ACK,),
        first_ticket,
        alice_failing(False),  # a delay is no failure,
    ),
    # limits: quarantined with the limit named; raw bytes kept for an operator
    Case(
        "deep-nesting",
        literal(nested(25)),
        "quarantined: message exceeds limits: nesting-depth",
    ),
    Case("nesting-within-limit", literal(nested(15)), "ticket CID-1000", (ACK,)),
    Case(
        "thousand-parts",
        literal(many_parts(1000)),
        "quarantined: message exceeds limits: part-count",
    ),
    Case(
        "thousand-five-hundred-headers",
        literal(H + "".join(f"X-Filler-{i}: v\r\n" for i in range(1500)) + "\r\nbody\r\n"),
        "quarantined: message exceeds limits: header-count",
    ),
    Case(
        "oversized-header-is-cut",
        literal(H + "X-Huge: " + "a" * 200_000 + "\r\n\r\nbody\r\n"),
        "ticket CID-1000",
        (ACK,),
        check=defects_include("header-truncated:x-huge"),
    ),
    # broken bytes and headers: parsed, never a crash
    Case("nul-bytes", literal(H + "\r\nbefore\x00after\r\n"), "ticket CID-1000", (ACK,)),
    Case(
        "invalid-charset",
        literal(
            H.replace("Subject: Help", "Subject: =?x-no-such?Q?Hall=F6?=")
            + "Content-Type: text/plain; charset=x-no-such\r\n\r\nHall\xf6\r\n"
        ),
        "ticket CID-1000",
        (ACK,),
    ),
    Case(
        "8bit-headers",
        literal(
            "From: Jörg <alice@acme.example>\r\nSubject: Grüße\r\n\r\nbody\r\n".encode("latin-1")
        ),
        "ticket CID-1000",
        (ACK,),
    ),
    Case("empty-message", literal(b""), "quarantined: no usable sender address in From"),
    Case("headers-only", literal(H), "ticket CID-1000", (ACK,)),
    Case(
        "no-from",
        literal("To: support@example.com\r\nSubject: x\r\n\r\nbody\r\n"),
        "quarantined: no usable sender address in From",
    ),
    Case(
        "from-two-addresses",
        literal("From: alice@acme.example, mallory@evil.example\r\nSubject: x\r\n\r\nb\r\n"),
        # Neither is taken for the sender, and neither is written to: the ticket is the
        # unverified sender's (test_ambiguous_from.py, test_unverified_senders.py).
        "ticket CID-1000 (unverified sender)",
    ),
    Case(
        "display-name-encoded-address",
        literal(
            "From: =?utf-8?Q?boss=40example=2Ecom?= <alice@acme.example>\r\nSubject: x\r\n\r\nb\r\n"
        ),
        "ticket CID-1000",
        (ACK,),
    ),
    Case(
        "crlf-in-subject",
        literal(H.replace("Subject: Help", "Subject: =?utf-8?Q?Hi=0D=0ABcc=3A_x=40evil.example?=")),
        "ticket CID-1000",
        (ACK,),
        check=one_line_subject,
    ),
    # attachment names and HTML
    Case(
        "name-path-traversal",
        attachment("../../etc/passwd"),
        "ticket CID-1000",
        (ACK,),
        check=stored_names("passwd"),
    ),
    Case(
        "name-control-chars",
        attachment("re\x07port\x1b.pdf"),
        "ticket CID-1000",
        (ACK,),
        check=stored_names("re port .pdf"),
    ),
    Case(
        "name-reserved",
        attachment("CON.txt"),
        "ticket CID-1000",
        (ACK,),
        check=stored_names("_CON.txt"),
    ),
    Case(
        "name-double-extension",
        attachment("invoice.pdf.exe"),
        "ticket CID-1000",
        (ACK,),
        check=stored_names("invoice.pdf.exe"),
    ),
    Case(
        "name-bidi-override",
        attachment("invoice\u202efdp.exe"),
        "ticket CID-1000",
        (ACK,),
        check=stored_names("invoicefdp.exe"),
    ),
    Case(
        "html-script-onerror",
        literal(
            H
            + "MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>Hello</p>"
            + "<script>alert(1)</script><img src=x onerror=alert(2)>\r\n"
        ),
        "ticket CID-1000",
        (ACK,),
        check=sanitised_html,
    ),
    # tickets, tags and addresses
    Case(
        "tag-of-other-organisations-ticket",
        mail(subject="Re: [CID-1000] Printer broken", sender="Mallory <mallory@evil.example>"),
        "reply CID-1000",
        (ACK,),
        first_ticket,
        article_is("internal", "unverified sender: not part of this ticket"),
    ),
    Case(
        "tag-of-other-ticket-new-ticket-policy",
        mail(subject="Re: [CID-1000] Printer broken", sender="Mallory <mallory@evil.example>"),
        "ticket CID-1001",
        (ACK, ("acknowledgement", "mallory@evil.example")),
        new_ticket_policy,
        ack_quotes_no_other_ticket,
    ),
    Case(
        "plus-addressed-recipient",
        mail(to="support+x@example.com"),
        "ticket CID-1000",
        (ACK,),
        domain_served,
        served_as("support+x@example.com"),
    ),
    Case(
        "reply-to-recently-closed-ticket",
        mail(subject="Re: [CID-1000] Printer broken"),
        "reply CID-1000",
        (ACK, ("reopened", "alice@acme.example")),
        closed_ticket(1),
    ),
    Case(
        "reply-to-long-closed-ticket",
        mail(subject="Re: [CID-1000] Printer broken"),
        "ticket CID-1001",
        (ACK, ACK),
        closed_ticket(400),
    ),
]


def _duplicate_setup(ctx: Context) -> Context:
    ingest(ctx, DUPLICATE)
    return ctx


DUPLICATE = make_mail(message_id="dup@acme.example")
CASES.append(
    Case(
        "duplicate-delivery",
        # The same message again by another path (one more Received line): nothing changes.
        literal(b"Received: from relay2.example by mx.example\r\n" + DUPLICATE),
        "ignored: duplicate of stored message 1",
        (ACK,),
        _duplicate_setup,
        one_ticket,
    )
)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(sqlite_ctx: Context, case: Case) -> None:
    ctx = case.setup(sqlite_ctx) if case.setup else sqlite_ctx
    outcome = ingest(ctx, case.raw(ctx))
    assert outcome.describe() == case.outcome
    assert [(m.template, m.to_addrs) for m in outbox(ctx)] == list(case.mails)
    if case.check is not None:
        case.check(ctx, outcome)


# --- what an operator does with the quarantine ------------------------------------------------

NO_FROM = (
    b"To: support@example.com\r\nSubject: who am I\r\nMessage-ID: <nf@x.example>\r\n\r\nhi\r\n"
)


def intake_row(ctx: Context, intake_id: int) -> Intake:
    with ctx.store.session() as session:
        intake = session.get(Intake, intake_id)
        assert intake is not None
        return intake


def stored_bytes(ctx: Context, intake_id: int) -> bytes:
    with ctx.store.session() as session:
        return stored_raw(session, intake_id)


def test_release_needs_an_address_when_the_message_has_none(sqlite_ctx: Context) -> None:
    quarantined = ingest(sqlite_ctx, NO_FROM)
    with pytest.raises(pipeline.OperatorError, match="give --from ADDRESS"):
        pipeline.release(sqlite_ctx, quarantined.intake_id)
    released = pipeline.release(sqlite_ctx, quarantined.intake_id, "Carol@Acme.example")
    assert (released.describe(), released.reason) == ("ticket CID-1000", "released by operator")
    intake = intake_row(sqlite_ctx, quarantined.intake_id)
    assert (intake.status, intake.reason) == ("done", "released by operator")
    assert stored_bytes(sqlite_ctx, quarantined.intake_id) == NO_FROM
    assert tickets(sqlite_ctx)[0].subject == "who am I"
    assert outbox(sqlite_ctx) == []  # quarantined for a reason: nobody is answered


def test_release_as_customer_answers_like_a_new_request(sqlite_ctx: Context) -> None:
    quarantined = ingest(sqlite_ctx, nested(25))
    assert quarantined.status == "quarantined"
    released = pipeline.release(sqlite_ctx, quarantined.intake_id, as_customer=True)
    assert released.describe() == "ticket CID-1000"
    assert [(m.template, m.to_addrs) for m in outbox(sqlite_ctx)] == [ACK]


def test_drop_keeps_the_bytes_and_refuses_a_second_time(sqlite_ctx: Context) -> None:
    quarantined = ingest(sqlite_ctx, NO_FROM)
    dropped = pipeline.drop(sqlite_ctx, quarantined.intake_id, "spam")
    assert dropped.describe() == "ignored: dropped by operator: spam"
    intake = intake_row(sqlite_ctx, quarantined.intake_id)
    assert (intake.status, intake.reason) == ("ignored", "dropped by operator: spam")
    assert stored_bytes(sqlite_ctx, quarantined.intake_id) == NO_FROM
    with pytest.raises(pipeline.OperatorError, match="is ignored, not quarantined"):
        pipeline.drop(sqlite_ctx, quarantined.intake_id, "again")
    with pytest.raises(pipeline.OperatorError, match="is ignored, not quarantined"):
        pipeline.release(sqlite_ctx, quarantined.intake_id, "a@acme.example")


def cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    config = tmp_path / "mailgate.toml"
    if not config.exists():
        config.write_text(
            f'[database]\nurl = "sqlite:///{tmp_path}/mg.db"\n'
            f'[paths]\ndata_dir = "{tmp_path}/data"\n'
            '[smtp]\naddresses = ["support@example.com"]\n'
            f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
            'from = "Support <support@example.com>"\n',
            encoding="utf-8",
        )
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = run_cli(["-c", str(config), *args])
    return status, out.getvalue(), err.getvalue()


def test_quarantine_commands(tmp_path: Path) -> None:
    (tmp_path / "deep.eml").write_bytes(nested(25))
    (tmp_path / "nofrom.eml").write_bytes(NO_FROM)
    status, out, _ = cli(
        tmp_path, "ingest", str(tmp_path / "deep.eml"), str(tmp_path / "nofrom.eml")
    )
    assert status == 0 and "quarantined: message exceeds limits: nesting-depth" in out
    status, out, _ = cli(tmp_path, "quarantine", "show", "1")
    assert status == 0 and "message exceeds limits: nesting-depth" in out
    assert "Message-ID: <deep@acme.example>" in out
    assert cli(tmp_path, "quarantine", "release", "2") == (
        65,
        "",
        "mailgate: message 2 has no sender address: give --from ADDRESS\n",
    )
    assert cli(tmp_path, "quarantine", "release", "1") == (
        0,
        "1: released as ticket CID-1000\n",
        "",
    )
    assert cli(tmp_path, "quarantine", "release", "1")[::2] == (
        65,
        "mailgate: message 1 is done, not quarantined\n",
    )
    assert cli(tmp_path, "quarantine", "drop", "2", "--reason", "junk") == (
        0,
        "2: ignored: dropped by operator: junk\n",
        "",
    )
    assert cli(tmp_path, "quarantine", "drop", "99", "--reason", "x")[::2] == (
        65,
        "mailgate: no stored message 99\n",
    )


def test_part_count_counts_content_type_lines_in_any_case_the_first_too() -> None:
    spellings = (b"CONTENT-TYPE", b"content-type", b"Content-Type \t")
    lines = b"".join(b"\r\n%s: text/plain" % spellings[i % 3] for i in range(MAX_PARTS + 1))
    mentioned = b"\r\nX-Note: content-type: not a line of its own"
    assert check_raw(b"Subject: x" + lines + mentioned)[1] == []  # the limit, not over it
    assert check_raw(b"content-type: multipart/mixed" + lines)[1] == ["limit:part-count"]
