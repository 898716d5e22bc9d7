"""Support-hour contingents: `customers contingent`, its history, what staff and customers see."""

from __future__ import annotations

import dataclasses
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import col, select

from mailgate.cli import run_cli
from mailgate.config import StaffConfig
from mailgate.desk.agents import add_agent
from mailgate.desk.customers import ContingentError, add_contingent, parse_amount
from mailgate.outbound.context import Context
from mailgate.reading.commands import duration_problem
from mailgate.store.models import Contingent, Organisation, Outbox
from tests.helpers import claim_domain, ingest, outbox, parsed
from tests.mails import make_mail, new_message_id

ORG = "acme.example"
AGENT = "bob@example.com"
FORMS = "write it like 90m, 1h30, 1:30, 1.5h; -30m corrects"
VERIFIED = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"}


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def write_config(ctx: Context, tmp_path: Path, extra: str = "") -> Path:
    """A configuration file for the command line on the test's own database."""
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "{ctx.config.database.url}"\n'
        f'[paths]\ndata_dir = "{ctx.config.paths.data_dir}"\n'
        '[smtp]\naddresses = ["support@example.com"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        'from = "Support <support@example.com>"\n' + extra,
        encoding="utf-8",
    )
    return path


def mailgate(config: Path, *args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = run_cli(["-c", str(config), *args])
    return Result(status, out.getvalue(), err.getvalue())


def new_customer(ctx: Context) -> None:
    """acme.example with one ticket (CID-1000) from alice@acme.example."""
    claim_domain(ctx, ORG, ORG)
    assert ingest(ctx, make_mail()).created


def organisation(ctx: Context) -> tuple[int, list[tuple[int, str, str]]]:
    """support_minutes and the contingent rows (minutes, note, actor) of acme.example."""
    with ctx.store.session() as session:
        org = session.exec(select(Organisation).where(Organisation.name == ORG)).one()
        rows = session.exec(
            select(Contingent)
            .where(Contingent.organisation_id == org.id)
            .order_by(col(Contingent.id))
        )
        return org.support_minutes, [(r.minutes, r.note, r.actor) for r in rows]


# --- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("+10h", 600),
        ("10h", 600),
        ("90m", 90),
        ("1h30", 90),
        ("1:30", 90),
        ("1.5h", 90),
        ("-2h", -120),
        ("-45m", -45),
    ],
)
def test_amounts(text: str, minutes: int) -> None:
    assert parse_amount(text) == minutes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "10",
            f'"10" has no unit (10m or 10h?): {FORMS}',
        ),
        ("soon", f'"soon" is not a duration: {FORMS}'),
        ("+", f'"+" is not a duration: {FORMS}'),
        ("1h75", f'"1h75" is not a duration: {FORMS}'),
        (
            "10h extra",
            f'"10h extra" is not a duration: {FORMS}',
        ),
        ("+0h", '"+0h" is zero: nothing to add'),
    ],
)
def test_bad_amounts(text: str, message: str) -> None:
    with pytest.raises(ContingentError) as exc:
        parse_amount(text)
    assert str(exc.value) == message


# --- the command -----------------------------------------------------------------------------


def test_top_up_and_correct(ctx: Context, tmp_path: Path) -> None:
    new_customer(ctx)
    config = write_config(ctx, tmp_path)

    added = mailgate(config, "customers", "contingent", ORG, "+10h", "--note", "package 2026")
    assert (added.returncode, added.stderr) == (0, "")
    assert added.stdout == (
        "acme.example: +10:00 recorded (package 2026)\ncontingent 10:00, used 0:00, left 10:00\n"
    )
    # A negative amount is a correction, not an option.
    corrected = mailgate(config, "customers", "contingent", ORG, "-2h")
    assert corrected.returncode == 0, corrected.stderr
    assert corrected.stdout == (
        "acme.example: -2:00 recorded\ncontingent 8:00, used 0:00, left 8:00\n"
    )
    assert organisation(ctx) == (480, [(600, "package 2026", "cli"), (-120, "", "cli")])

    history = mailgate(config, "customers", "contingent", ORG, "--format", "json")
    data = json.loads(history.stdout)
    assert [(h["minutes"], h["note"], h["actor"]) for h in data["history"]] == [
        (600, "package 2026", "cli"),
        (-120, "", "cli"),
    ]
    assert (data["total_minutes"], data["used_minutes"], data["left_minutes"]) == (480, 0, 480)
    assert data["organisation"] == ORG and "added" not in data

    table = mailgate(config, "customers", "contingent", ORG)
    assert table.returncode == 0
    assert "+10:00" in table.stdout and "package 2026" in table.stdout
    assert "-2:00" in table.stdout
    assert table.stdout.endswith("contingent 8:00, used 0:00, left 8:00\n")


def test_unknown_organisation_and_bad_amount_change_nothing(ctx: Context, tmp_path: Path) -> None:
    new_customer(ctx)
    config = write_config(ctx, tmp_path)
    unknown = mailgate(config, "customers", "contingent", "nope.example", "+10h")
    assert unknown == Result(65, "", "mailgate: no organisation 'nope.example'\n")
    for amount in ("10", "ten hours", "1h75"):
        bad = mailgate(config, "customers", "contingent", ORG, amount)
        assert bad.returncode == 65
        assert bad.stderr == f"mailgate: {duration_problem(amount)}\n"
        assert "Traceback" not in bad.stderr and bad.stdout == ""
    alone = mailgate(config, "customers", "contingent", ORG, "--note", "package")
    assert alone == Result(64, "", "mailgate: --note needs an AMOUNT to describe\n")
    assert organisation(ctx) == (0, [])


def test_history_date_is_on_the_desk_calendar(ctx: Context, tmp_path: Path) -> None:
    new_customer(ctx)
    config = write_config(ctx, tmp_path, '[tickets]\ntimezone = "Europe/Berlin"\n')
    with ctx.store.session() as session:
        org = session.exec(select(Organisation).where(Organisation.name == ORG)).one()
        # 23:30 UTC on 31 October is half past midnight on 1 November in Berlin.
        add_contingent(
            session, org, 300, "autumn", "cli", datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
        )
    data = json.loads(mailgate(config, "customers", "contingent", ORG, "--format", "json").stdout)
    assert [(h["date"], h["minutes"]) for h in data["history"]] == [("2026-11-01", 300)]


def test_sum_includes_rows_from_before_the_command(ctx: Context) -> None:
    """A contingent carried over by the migration is one row; a top-up adds to it."""
    new_customer(ctx)
    with ctx.store.session() as session:
        org = session.exec(select(Organisation).where(Organisation.name == ORG)).one()
        session.add(
            Contingent(
                organisation_id=org.id or 0,
                minutes=300,
                note="contingent before its history was kept",
                actor="migration",
                created_at=ctx.clock(),
            )
        )
        org.support_minutes = 300
        session.flush()
        add_contingent(session, org, 90, "", "cli", ctx.clock())
    assert organisation(ctx)[0] == 390


# --- what staff and the customer see --------------------------------------------------------


def staff_mail(number: int, body: str) -> bytes:
    return make_mail(
        sender=f"Bob Agent <{AGENT}>",
        subject=f"Re: [CID-{number}] Printer broken",
        body=body,
        headers=VERIFIED,
    )


def customer_reply(ctx: Context, number: int) -> None:
    ingest(ctx, make_mail(subject=f"Re: [CID-{number}] Printer broken", body="Any news?\n"))


def last_mail(ctx: Context, template: str) -> str:
    rows: list[Outbox] = [r for r in outbox(ctx) if r.template == template]
    body = parsed(rows[-1].raw).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return str(body).replace("\r\n", "\n")


def test_billable_time_brings_the_warning_and_the_list_shows_it(
    ctx: Context, tmp_path: Path
) -> None:
    # Warn below 2 hours; notifications go to the team address.
    staff = StaffConfig(team_address="team@example.com", hours_warning=2.0)
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, staff=staff))
    new_customer(ctx)
    with ctx.store.session() as session:
        add_agent(session, AGENT, "Bob Agent", "en", ctx.clock())
    config = write_config(ctx, tmp_path)
    assert mailgate(config, "customers", "contingent", ORG, "+3h").returncode == 0

    customer_reply(ctx, 1000)
    before = last_mail(ctx, "staff_notification")
    assert "Support hours: 0:00 used, 3:00 left (of 3:00)" in before
    assert "almost no support hours left" not in before

    ingest(ctx, staff_mail(1000, "#time 1h30 billable #status working\n\nDriver reinstalled.\n"))
    customer_reply(ctx, 1000)
    after = last_mail(ctx, "staff_notification")
    assert "Support hours: 1:30 used, 1:30 left (of 3:00)" in after
    assert "Note: this organisation has almost no support hours left." in after

    ingest(ctx, make_mail(subject="list", body="\n", message_id=new_message_id()))
    listing = last_mail(ctx, "ticket_list")
    assert "Support hours: 1:30 used, 1:30 left (of 3:00)." in listing

    shown = mailgate(config, "customers", "contingent", ORG)
    assert shown.stdout.endswith("contingent 3:00, used 1:30, left 1:30\n")
