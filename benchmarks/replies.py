"""How often mailgate keeps exactly the writer's own text of a reply, on a held-out set.

Each `replies/NAME.eml` is a reply as a mail client sends it; `NAME.expected.txt` holds what
its writer wrote. mailgate reads it the way ingest does (`parse`, then `written_text`); the
result must equal the expected text after `normalise` (see `replies/README.md`). The same
messages go, for comparison, through the reply parsers published as libraries, fed the
text mailgate parsed out of each mail (the best input they can get).

    .venv/bin/python benchmarks/replies.py               # failures, scores, time
    .venv/bin/python benchmarks/replies.py --show NAME   # one case: got and expected
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mailgate.flows.replies import written_text
from mailgate.reading.parse import ParsedMail, parse

CASES = Path(__file__).resolve().parent / "replies"
Reader = Callable[[ParsedMail], str]


@dataclass(frozen=True)
class Case:
    name: str
    language: str  # from the file name: LANGUAGE_CLIENT_what.eml
    client: str
    raw: bytes
    expected: str | None  # None when the expected file is missing


@dataclass(frozen=True)
class Result:
    case: Case
    got: str
    ok: bool


@dataclass(frozen=True)
class Score:
    reader: str
    results: tuple[Result, ...]

    @property
    def right(self) -> int:
        return sum(r.ok for r in self.results)

    def line(self) -> str:
        total = len(self.results)
        share = 100 * self.right / total if total else 0.0
        return f"replies read right: {self.right} of {total} ({share:.0f} %)"


def normalise(text: str) -> str:
    """Trailing whitespace off each line, runs of blank lines made one, blank lines off both
    ends; nothing else, so a cut that keeps or loses a word is always seen."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def load_cases(directory: Path = CASES) -> list[Case]:
    cases = []
    for eml in sorted(directory.glob("*.eml")):
        name = eml.name.removesuffix(".eml")
        language, client, _ = [*name.split("_", 2), "", ""][:3]
        expected_file = directory / f"{name}.expected.txt"
        expected = expected_file.read_text("utf-8") if expected_file.exists() else None
        cases.append(Case(name, language, client, eml.read_bytes(), expected))
    return cases


def orphans(directory: Path = CASES) -> list[str]:
    """Expected files without their message: a renamed case whose answer was left behind."""
    return sorted(
        p.name
        for p in directory.glob("*.expected.txt")
        if not (directory / p.name.replace(".expected.txt", ".eml")).exists()
    )


def mailgate_reader(mail: ParsedMail) -> str:
    return written_text(mail)


def _mail_parser_reply() -> Reader | None:
    try:
        from mailparser_reply import EmailReplyParser  # type: ignore[import-not-found]
        from mailparser_reply.constants import MAIL_LANGUAGES  # type: ignore[import-not-found]
    except ImportError:
        return None

    reader = EmailReplyParser(languages=list(MAIL_LANGUAGES))
    return lambda mail: reader.parse_reply(mail.text) or ""


def _email_reply_parser() -> Reader | None:
    try:
        from email_reply_parser import EmailReplyParser  # type: ignore[import-not-found]
    except ImportError:
        return None
    return lambda mail: EmailReplyParser.parse_reply(mail.text) or ""


def score(cases: Sequence[Case], reader: Reader, label: str) -> Score:
    results = []
    for case in cases:
        got = reader(parse(case.raw))
        ok = case.expected is not None and normalise(got) == normalise(case.expected)
        results.append(Result(case, got, ok))
    return Score(label, tuple(results))


def timing(cases: Sequence[Case], rounds: int = 5) -> tuple[float, float]:
    """Median milliseconds a message: mailgate's reader alone, and parse plus reader."""
    reader_ms: list[float] = []
    total_ms: list[float] = []
    for _ in range(rounds):
        for case in cases:
            start = time.perf_counter()
            mail = parse(case.raw)
            parsed = time.perf_counter()
            written_text(mail)
            done = time.perf_counter()
            reader_ms.append((done - parsed) * 1000)
            total_ms.append((done - start) * 1000)
    return statistics.median(reader_ms), statistics.median(total_ms)


def short_diff(expected: str, got: str, limit: int = 12) -> str:
    lines = list(
        difflib.unified_diff(
            normalise(expected).splitlines(),
            normalise(got).splitlines(),
            "expected",
            "got",
            n=1,
            lineterm="",
        )
    )[2:]
    more = len(lines) - limit
    return "\n".join(lines[:limit] + ([f"… {more} more lines"] if more > 0 else []))


def _by(results: Sequence[Result], key: Callable[[Case], str]) -> dict[str, tuple[int, int]]:
    groups: dict[str, tuple[int, int]] = {}
    for r in results:
        right, total = groups.get(key(r.case), (0, 0))
        groups[key(r.case)] = (right + r.ok, total + 1)
    return dict(sorted(groups.items()))


def _group_table(title: str, results: Sequence[Result], key: Callable[[Case], str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title.split()[-1])
    table.add_column("right", justify="right")
    for group, (right, total) in _by(results, key).items():
        table.add_row(group, f"{right} of {total}")
    return table


def report(console: Console, main: Score, others: Sequence[tuple[str, Score | None]]) -> None:
    failures = [r for r in main.results if not r.ok]
    if failures:
        table = Table(title="cases mailgate reads wrong", title_justify="left", show_lines=True)
        table.add_column("case")
        table.add_column("diff (expected → got)")
        for r in failures:
            expected = r.case.expected
            table.add_row(
                r.case.name, "no expected file" if expected is None else short_diff(expected, r.got)
            )
        console.print(table)
    console.print(_group_table("by language", main.results, lambda c: c.language))
    console.print(_group_table("by client", main.results, lambda c: c.client))
    console.print(f"mailgate: {main.line()}", markup=False)
    for label, other in others:
        if other is None:
            console.print(f"{label}: not installed, skipped", markup=False)
        else:
            console.print(f"{label}: {other.line()}", markup=False)


def show(console: Console, cases: Sequence[Case], name: str, directory: Path) -> int:
    found = [c for c in cases if c.name == name.removesuffix(".eml")]
    if not found:
        console.print(f"no case named {name!r} in {directory}", markup=False)
        return 2
    case = found[0]
    got = written_text(parse(case.raw))
    verdict = "right" if case.expected and normalise(got) == normalise(case.expected) else "wrong"
    console.rule(f"{case.name}: got ({verdict})")
    console.print(normalise(got), markup=False, highlight=False)
    console.rule("expected")
    console.print(
        "(no expected file)" if case.expected is None else normalise(case.expected),
        markup=False,
        highlight=False,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args_parser.add_argument("--show", metavar="NAME", help="print one case's got and expected")
    args_parser.add_argument("--dir", type=Path, default=CASES, help="the set of replies")
    args = args_parser.parse_args(argv)
    console = Console(width=120, soft_wrap=False)
    cases = load_cases(args.dir)
    if args.show:
        return show(console, cases, args.show, args.dir)
    if not cases:
        console.print(f"no .eml files in {args.dir}", markup=False)
        return 2
    main_score = score(cases, mailgate_reader, "mailgate")
    # The maintained libraries, when installed (neither is a dependency), for comparison.
    others: list[tuple[str, Score | None]] = []
    for name, reader in (
        ("mail-parser-reply", _mail_parser_reply()),
        ("email-reply-parser", _email_reply_parser()),
    ):
        others.append((name, None if reader is None else score(cases, reader, name)))
    report(console, main_score, others)
    for name in orphans(args.dir):
        console.print(f"expected file without its message: {name}", markup=False)
    reader_ms, total_ms = timing(cases)
    console.print(
        f"time a message (median of {len(cases)} × 5): reader {reader_ms:.2f} ms, "
        f"parse + reader {total_ms:.2f} ms",
        markup=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
