"""Parsing staff #commands: every command and alias, several per line, body, errors."""

from __future__ import annotations

import pytest

from mailgate.reading.commands import Command, Parsed, parse_commands


def only(text: str) -> Command:
    parsed = parse_commands(text)
    assert parsed.errors == ()
    assert len(parsed.commands) == 1
    return parsed.commands[0]


def error(text: str) -> str:
    parsed = parse_commands(text)
    assert parsed.commands == ()
    assert len(parsed.errors) == 1
    return parsed.errors[0]


@pytest.mark.parametrize(
    ("line", "name", "args"),
    [
        ("#status open", "status", ("open",)),
        ("#status working", "status", ("working",)),
        ("#status hold", "status", ("hold",)),
        ("#status delivered", "status", ("delivered",)),
        ("#status closed", "status", ("closed",)),
        ("#STATUS Working", "status", ("working",)),
        ("#status offen", "status", ("open",)),
        ("#status in-arbeit", "status", ("working",)),
        ("#status inarbeit", "status", ("working",)),
        ("#status In Arbeit", "status", ("working",)),
        ("#status bearbeitung", "status", ("working",)),
        ("#status warten", "status", ("hold",)),
        ("#status wartend", "status", ("hold",)),
        ("#status zurückgestellt", "status", ("hold",)),
        ("#status geliefert", "status", ("delivered",)),
        ("#status erledigt", "status", ("delivered",)),
        ("#status geschlossen", "status", ("closed",)),
        ("#status: working", "status", ("working",)),
        ("#hold 2026-12-01", "hold", ("2026-12-01",)),
        ("#hold 01.12.2026", "hold", ("2026-12-01",)),
        ("#hold 1.2.2027", "hold", ("2027-02-01",)),
        # A status with a date is the hold it names.
        ("#status hold 2026-12-20", "hold", ("2026-12-20",)),
        ("#Status warten 20.12.2026", "hold", ("2026-12-20",)),
        ("#deliver", "deliver", ()),
        ("#liefern", "deliver", ()),
        ("#erledigt", "deliver", ()),
        ("#close", "close", ()),
        ("#schließen", "close", ()),
        ("#schliessen", "close", ()),
        ("#reopen", "reopen", ()),
        ("#wiedereröffnen", "reopen", ()),
        ("#priority A", "priority", ("A",)),
        ("#priority b", "priority", ("B",)),
        ("#priority low", "priority", ("C",)),
        ("#priority high", "priority", ("A",)),
        ("#priority medium", "priority", ("B",)),
        ("#priorität hoch", "priority", ("A",)),
        ("#prio mittel", "priority", ("B",)),
        ("#prio niedrig", "priority", ("C",)),
        ("#type bug", "type", ("bug",)),
        ("#type Enhancement", "type", ("enhancement",)),
        ("#typ fehler", "type", ("bug",)),
        ("#typ verbesserung", "type", ("enhancement",)),
        ("#typ vorschlag", "type", ("suggestion",)),
        ("#typ hilfe", "type", ("help",)),
        ("#category billing", "category", ("billing",)),
        ("#kategorie Web Shop", "category", ("Web Shop",)),
        ("#assign alice", "assign", ("alice",)),
        ("#assign Bob Builder", "assign", ("Bob Builder",)),
        ("#zuweisen Bob@Example.com", "assign", ("Bob@Example.com",)),
        ("#cc Carol@Acme.example", "cc", ("carol@acme.example",)),
        ("#cc <carol@acme.example>", "cc", ("carol@acme.example",)),
        ("#billable yes", "billable", ("yes",)),
        ("#billable NO", "billable", ("no",)),
        ("#billable ja", "billable", ("yes",)),
        ("#billable nein", "billable", ("no",)),
        ("#internal", "internal", ()),
        ("#intern", "internal", ()),
        ("#customer dave@acme.example", "customer", ("dave@acme.example",)),
        ("#kunde Dave@Acme.example", "customer", ("dave@acme.example",)),
        # French
        ("#statut ouvert", "status", ("open",)),
        ("#statut en cours", "status", ("working",)),
        ("#statut en attente", "status", ("hold",)),
        ("#statut résolu", "status", ("delivered",)),
        ("#statut livré", "status", ("delivered",)),
        ("#statut fermé", "status", ("closed",)),
        ("#statut en attente 20.12.2026", "hold", ("2026-12-20",)),
        ("#attente 20.12.2026", "hold", ("2026-12-20",)),
        ("#livrer", "deliver", ()),
        ("#résolu", "deliver", ()),
        ("#fermer", "close", ()),
        ("#rouvrir", "reopen", ()),
        ("#priorité haute", "priority", ("A",)),
        ("#priorite basse", "priority", ("C",)),
        ("#type amélioration", "type", ("enhancement",)),
        ("#catégorie Facturation", "category", ("Facturation",)),
        ("#assigner alice", "assign", ("alice",)),
        ("#facturable oui", "billable", ("yes",)),
        ("#interne", "internal", ()),
        ("#client Dave@Acme.example", "customer", ("dave@acme.example",)),
    ],
)
def test_each_command_and_alias(line: str, name: str, args: tuple[str, ...]) -> None:
    command = only(line + "\nThanks.\n")
    assert (command.name, command.args, command.source) == (name, args, line)


@pytest.mark.parametrize(
    ("duration", "minutes"),
    [
        ("1h30", 90),
        ("1h 30m", 90),
        ("1h30m", 90),
        ("90m", 90),
        ("90min", 90),
        ("1:30", 90),
        ("1.5h", 90),
        ("1,5h", 90),
        ("2h", 120),
        ("24h", 1440),
        ("1m", 1),
    ],
)
def test_time_durations(duration: str, minutes: int) -> None:
    assert only(f"#time {duration} billable").args == (str(minutes), "billable")


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("billable", "billable"),
        ("Berechnet", "billable"),
        ("abrechenbar", "billable"),
        ("free", "free"),
        ("frei", "free"),
        ("kostenlos", "free"),
        ("facturable", "billable"),
        ("gratuit", "free"),
    ],
)
def test_time_billable_words(word: str, kind: str) -> None:
    assert only(f"#zeit 30m {word}").args == ("30", kind)


def test_time_keeps_a_note_with_a_number_sign() -> None:
    command = only("#time 1h 30m free replaced toner, see #42\n")
    assert command.args == ("90", "free", "replaced toner, see #42")


def test_several_commands_on_a_line_and_several_lines() -> None:
    parsed = parse_commands(
        "\n\n#status working #priority A #time 30m billable call\n#assign bob\n\nDone.\n"
    )
    assert [(c.name, c.args) for c in parsed.commands] == [
        ("status", ("working",)),
        ("priority", ("A",)),
        ("time", ("30", "billable", "call")),
        ("assign", ("bob",)),
    ]
    assert [c.source for c in parsed.commands][:2] == ["#status working", "#priority A"]
    assert parsed.errors == ()
    assert parsed.body == "Done.\n"


def test_body_keeps_everything_after_the_command_block() -> None:
    text = "#close\n\n\nHello,\n\nAll done.\n#status open here is text\n-- \nBob\n"
    parsed = parse_commands(text)
    assert [c.name for c in parsed.commands] == ["close"]
    assert parsed.body == "Hello,\n\nAll done.\n#status open here is text\n-- \nBob\n"


def test_commands_only_before_the_text_starts() -> None:
    """A line of valid commands after the text stays text; the agent is told it was not
    applied. A line that is no valid command is plain text."""
    text = "Thanks for the call.\n#close\n#status working #priority A\n#status finished\n"
    parsed = parse_commands(text)
    assert (parsed.commands, parsed.body) == ((), text)
    assert [str(e).split(":")[0] for e in parsed.errors] == [
        "#close",
        "#status working #priority A",
    ]
    assert "after the text, so not applied" in str(parsed.errors[0])


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("Hallo Tom,\n#internal\n\nBitte prüfen.\n", "Hallo Tom,\n\nBitte prüfen.\n"),
        ("Hi Tom\n\n#internal\n#close\nDone.\n", "Hi Tom\n\nDone.\n"),
        ("\nDear Ms Smith,\n\n#internal\n\n\nSee below.\n", "Dear Ms Smith,\n\nSee below.\n"),
        ("Guten Tag Herr Meier,\n#internal #close\nanbei.\n", "Guten Tag Herr Meier,\nanbei.\n"),
        ("Moin,\n\n#internal\n", ""),
    ],
)
def test_commands_after_a_greeting(text: str, body: str) -> None:
    parsed = parse_commands(text)
    assert parsed.commands[0].name == "internal" and parsed.errors == ()
    assert parsed.body == body


@pytest.mark.parametrize(
    "line",
    ["Thanks.", "Tom, please check the invoice of last month and call the customer back,"],
)
def test_a_line_of_text_is_no_greeting(line: str) -> None:
    text = f"{line}\n#internal\n"
    parsed = parse_commands(text)
    assert (parsed.commands, parsed.body) == ((), text)
    assert [str(e).split(":")[0] for e in parsed.errors] == ["#internal"]  # told, not applied


def test_crlf_lines() -> None:
    parsed = parse_commands("#deliver\r\n\r\nFixed.\r\n")
    assert [c.name for c in parsed.commands] == ["deliver"]
    assert parsed.body == "Fixed.\r\n"


@pytest.mark.parametrize(
    "text", ["#1 priority for us is speed.\n", "# Heading\n", "#42\n", "Hello\n"]
)
def test_text_that_only_looks_like_a_command(text: str) -> None:
    assert parse_commands(text) == Parsed((), (), text)


def test_a_number_line_ends_the_block() -> None:
    parsed = parse_commands("#priority A\n#1 priority for us is speed.\n")
    assert [c.name for c in parsed.commands] == ["priority"]
    assert parsed.body == "#1 priority for us is speed.\n"


def test_only_commands_leaves_an_empty_body() -> None:
    assert parse_commands("#close\n\n").body == ""


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#status finished", '#status: "finished" is not a status (open, working, hold,'),
        ("#status", "#status: needs a status"),
        ("#hold 2026-02-30", '#hold: "2026-02-30" is not a date'),
        ("#hold 31.02.2026", '#hold: "31.02.2026" is not a date'),
        ("#hold tomorrow", '#hold: "tomorrow" is not a date'),
        ("#hold", "#hold: needs one date"),
        ("#status hold tomorrow", '#status: "tomorrow" is not a date'),
        ("#status hold 1.1.2027 noon", "#status: needs one date"),
        ("#close now", '#close: takes no arguments, got "now"'),
        ("#priority D", '#priority: "D" is not a priority (A, B, C)'),
        ("#prio urgent", '#prio: "urgent" is not a priority'),
        ("#type feature", '#type: "feature" is not a type (bug, enhancement, suggestion, help)'),
        ("#category", "#category: needs a category"),
        ("#assign", "#assign: needs an agent"),
        ("#cc carol", '#cc: "carol" is not one e-mail address'),
        ("#cc a@b.example c@d.example", '#cc: "a@b.example c@d.example" is not one e-mail'),
        ("#cc a@b.example, c@d.example", '#cc: "a@b.example, c@d.example" is not one e-mail'),
        ("#customer", "#customer: needs one e-mail address"),
        ("#time", "#time: needs a duration"),
        ("#time soon billable", '#time: "soon" is not a duration'),
        ("#time 0m free", "#time: 0 minutes is not between"),
        ("#time 25h free", "#time: 1500 minutes is not between"),
        ("#time 1:75 free", '#time: "1:75" is not a duration'),
        ("#time 30m", '#time: say "billable" or "free"'),
        ("#time 30m fixed it", '#time: say "billable" or "free"'),
        ("#billable maybe", '#billable: "maybe" is not yes or no'),
        ("#frobnicate now", "#frobnicate: unknown command (known: status, hold,"),
    ],
)
def test_errors_name_the_command_and_reason(line: str, reason: str) -> None:
    assert error(line).startswith(reason)


def test_errors_do_not_stop_the_other_commands() -> None:
    parsed = parse_commands("#status finished #priority A\n#foo\nBody\n")
    assert [c.name for c in parsed.commands] == ["priority"]
    assert [e.split(":")[0] for e in parsed.errors] == ["#status", "#foo"]
    assert parsed.body == "Body\n"


@pytest.mark.parametrize("language", ["de", "fr"])
def test_every_phrase_has_a_wording_with_only_its_own_values(language: str) -> None:
    from string import Formatter

    from mailgate.reading.phrases import CATALOGUES, ENGLISH

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in Formatter().parse(text) if name}

    catalogue = CATALOGUES[language]
    assert set(catalogue) == set(ENGLISH)
    for key, wording in catalogue.items():
        assert fields(wording) <= fields(ENGLISH[key]), key
