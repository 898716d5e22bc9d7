"""The benchmarks still run: a tiny ingest run end to end, and the corpus is deterministic."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A benchmark script as a module; its sibling `corpus` import resolves via sys.path."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_corpus_is_deterministic_and_threads_to_earlier_tickets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = load("corpus", monkeypatch)
    samples = corpus.generate_samples(40, seed=7, first_number=500)
    assert [s.raw for s in samples] == corpus.generate(40, seed=7, first_number=500)
    assert samples[0].kind == corpus.NEW
    new = [s for s in samples if s.kind == corpus.NEW]
    assert [s.number for s in new] == list(range(500, 500 + len(new)))
    requesters = {s.number: s.sender for s in new}
    for s in samples:
        if s.kind == corpus.REPLY:
            assert requesters[s.number] == s.sender
            assert f"[CID-{s.number}]" in s.subject


def test_ingest_benchmark_runs_on_a_tiny_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest = load("ingest", monkeypatch)
    status = ingest.main(["--messages", "30", "--dir", str(tmp_path / "work")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "machine:" in out
    for stage in ("baseline (stdlib)", "mailgate parse", "mailgate pipeline"):
        assert re.search(rf"^{re.escape(stage)}\s+30\s+[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M), out
    assert "time ratios: mailgate/baseline" in out
    match = re.search(r"\((\d+) new requests, (\d+) replies\)", out)
    assert match is not None and int(match[1]) + int(match[2]) == 30
    assert "outcomes: done 30\n" in out
    assert f"tickets: {match[1]} for {match[1]} new requests: ok" in out
    assert "threading: 30 of 30 as expected" in out


def test_stats_benchmark_runs_on_a_tiny_desk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("stats", monkeypatch)
    status = bench.main(["--tickets", "40", "--dir", str(tmp_path / "work")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert re.search(r"^data: 40 tickets over 90 days, \d+ articles, \d+ time entries", out, re.M)
    assert re.search(r"^stats \(median of 3\):\s+[\d.]+ s$", out, re.M), out
    assert re.search(r"^tickets list --status open:\s+[\d.]+ s  \(\d+ rows as JSON\)$", out, re.M)
    for label, count in (("export xlsx, 4 tickets:", 4), ("export xlsx, all:", 40)):
        line = re.search(rf"^{re.escape(label)}\s+[\d.]+ s  .* MB, (\d+) tickets", out, re.M)
        assert line is not None and int(line[1]) == count, out


def test_smtp_intake_benchmark_runs_on_a_tiny_corpus(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("smtp_intake", monkeypatch)
    assert bench.main(["--messages", "24", "--clients", "3", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    for server in ("bare aiosmtpd + fsync", "mailgate run (SQLite)"):
        # messages, refused, seconds, msg/s, p50, p99, and the server's CPU a message
        row = rf"^{re.escape(server)}\s+24\s+0(\s+[\d.]+){{5}}$"
        assert len(re.findall(row, out, re.M)) == 2, out  # one a round
    assert len(re.findall(r"^outcomes: done 24; tickets \d+$", out, re.M)) == 2, out
    for number in (1, 2):  # end to end first: tickets with their acknowledgement at the sink
        line = (
            rf"^round {number}: end to end [\d.]+ msg/s, [\d.]+x of intake \([\d.]+ msg/s; "
            r"all (\d+) acknowledgements at the sink after [\d.]+ s\); intake throughput "
            r"[\d.]+x the bare server, p99 DATA->250 [\d.]+x$"
        )
        sent = re.search(line, out, re.M)
        assert sent is not None and int(sent[1]) > 0, out  # the acknowledgements
    bound = (
        r"^  CPU a message: [\d.]+ ms while senders sent, [\d.]+ ms after \(parsing, tickets, "
        r"sending\); all \d+ cores busy throughout would give at most [\d.]+ msg/s end to end, "
        r"[\d.]+x of intake \(0.8x: (within|beyond) what the CPU allows\); this round "
        r"reached [\d.]+ of that$"
    )
    assert len(re.findall(bound, out, re.M)) == 2, out  # one a round
    headline = (
        r"^median of 2 rounds: end to end [\d.]+x of intake \([\d.]+ msg/s, at the sink "
        r"after [\d.]+ s\); throughput [\d.]+x, p99 DATA->250 [\d.]+x$"
    )
    assert re.search(headline, out, re.M), out


def test_memory_benchmark_runs_on_a_small_attachment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("memory", monkeypatch)
    assert bench.main(["--attachment-mb", "1", "--skip-imap"]) == 0
    out = capsys.readouterr().out
    # The daemon (takes the mail in) and its worker (parses it) each have a row, and a sum.
    for process in ("daemon", "worker"):
        row = rf"^smtp\s+{process}\s+1\.\d\s+[\d.]+\s+[\d.]+\s+-?[\d.]+\s+[\d.]+\s+[\d.]+$"
        assert re.search(row, out, re.M), out
    assert re.search(r"^smtp\s+sum\s+[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M), out
    together = re.search(r"^smtp\s+all, PSS\s+([\d.]+)\s+[\d.]+\s+[\d.]+$", out, re.M)
    assert together and float(together[1]) > 0, out


def test_imap_backlog_benchmark_runs_on_a_tiny_backlog(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("imap_backlog", monkeypatch)
    assert bench.main(["--messages", "20", "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^bare imapclient fetch loop\s+20\s+[\d.]+\s+[\d.]+$", out, re.M), out
    reading = r"^fetch loop \+ stdlib parse\s+20\s+[\d.]+\s+[\d.]+\s+[\d.]+x$"
    assert re.search(reading, out, re.M), out
    for stage in ("mailgate run: stored, moved", "... and tickets"):
        row = rf"^{re.escape(stage)}\s+20\s+[\d.]+\s+[\d.]+\s+[\d.]+x\s+[\d.]+x$"
        assert re.search(row, out, re.M), out
    assert re.search(
        r"^CPU a message: mailgate [\d.]+ ms .* the loop that parses [\d.]+ ms", out, re.M
    )
    bound = r"could make at most \d+ tickets/s \([\d.]+x the loop that parses\); 0.8x would need"
    assert re.search(bound, out), out


def test_replies_benchmark_scores_the_whole_held_out_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("replies", monkeypatch)
    cases = bench.load_cases()
    assert len(cases) >= 60
    assert [c.name for c in cases if c.expected is None] == []
    assert bench.orphans() == []
    score = bench.score(cases, bench.mailgate_reader, "mailgate")
    assert len(score.results) == len(cases)
    assert re.fullmatch(rf"replies read right: \d+ of {len(cases)} \(\d+ %\)", score.line())
    # The whole run: scores of mailgate and of the libraries, by language and client, and time.
    assert bench.main([]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^mailgate: replies read right: \d+ of {len(cases)} ", out, re.M), out
    for library in ("mail-parser-reply", "email-reply-parser"):  # compared where installed
        assert re.search(rf"^{library}: (replies read right|not installed, skipped)", out, re.M)
    assert re.search(r"^time a message .*: reader [\d.]+ ms, parse \+ reader [\d.]+ ms$", out, re.M)
    for group in ("by language", "by client"):
        assert group in out


REPLY = (
    "From: Anna Berger <anna@example.org>\r\nTo: support@example.com\r\n"
    "Subject: Re: [CID-1] Drucker\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    "Die Nummer ist KD-1.  \r\n\r\n\r\nGruß Anna\r\n\r\n"
    "Am 03.06.2024 um 10:15 schrieb Support <support@example.com>:\r\n> Welche Nummer?\r\n"
)


def test_replies_benchmark_compares_after_whitespace_only_and_shows_a_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("replies", monkeypatch)
    (tmp_path / "de_mail_spaces.eml").write_text(REPLY, "utf-8", newline="")
    # Blank lines and trailing spaces differ from what the reader gives: still right.
    (tmp_path / "de_mail_spaces.expected.txt").write_text("\nDie Nummer ist KD-1.\n\nGruß Anna\n\n")
    (tmp_path / "de_mail_word.eml").write_text(REPLY, "utf-8", newline="")
    # One word more than the writer wrote: wrong.
    (tmp_path / "de_mail_word.expected.txt").write_text("Die Nummer ist KD-1.\n\nGruß, Anna\n")
    (tmp_path / "en_mail_bare.eml").write_text(REPLY, "utf-8", newline="")
    assert bench.main(["--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mailgate: replies read right: 1 of 3 (33 %)" in out, out
    assert "de_mail_word" in out and "+Gruß Anna" in out and "-Gruß, Anna" in out
    assert "no expected file" in out
    assert bench.main(["--dir", str(tmp_path), "--show", "de_mail_spaces"]) == 0
    shown = capsys.readouterr().out
    assert "de_mail_spaces: got (right)" in shown
    assert shown.count("Die Nummer ist KD-1.") == 2  # got and expected
    assert bench.main(["--dir", str(tmp_path), "--show", "nothing"]) == 2
    assert "no case named 'nothing'" in capsys.readouterr().out


@pytest.mark.postgres
def test_postgres_cluster_benchmark_runs_on_a_tiny_load(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("postgres_cluster", monkeypatch)
    argv = ["--messages", "20", "--imap-messages", "6", "--clients", "2", "--timeout", "120"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    # The baseline (one instance) and the cluster each took the whole load.
    for setup in ("1 instance(s)", "2 instance(s)"):
        assert re.search(rf"^{re.escape(setup)}\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+$", out, re.M)
    assert re.search(r"^ratio 2 instances / 1: SMTP intake [\d.]+x, end to end [\d.]+x$", out, re.M)
    # Each of the two mailboxes is served by exactly one instance.
    served = re.search(r"^mailboxes served per instance: #0 (\d), #1 (\d)$", out, re.M)
    assert served is not None and int(served[1]) + int(served[2]) == 2, out


def _search_engine_present() -> bool:
    return importlib.util.find_spec("mailgate.search") is not None


@pytest.mark.parametrize("dbs", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_search_benchmark_runs_on_a_tiny_desk(
    dbs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("search", monkeypatch)
    keep = tmp_path / "keep"
    argv = ["--quick", "--dbs", dbs, "--messages", "4", "--keep", str(keep)]
    try:
        _run_search_benchmark(bench, dbs, argv, capsys)
    finally:  # the kept PostgreSQL database
        bench.drop(bench.kept_db(dbs, keep, bench.parse_args(argv), True))


def _run_search_benchmark(
    bench: ModuleType, dbs: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    made = rf"^{dbs}: 1000 tickets, (\d+) articles, \d+ attachments, text [\d.]+ MB; generated in"
    articles = re.search(made, out, re.M)
    assert articles is not None and 3000 < int(articles[1]) < 5000, out
    assert re.search(rf"^sizes \({dbs}\):$", out, re.M), out
    assert re.search(r"^  index / text it indexes \([\d.]+ MB\): [\d.]+x", out, re.M), out
    rates = re.findall(r"^  (with|without) index: [\d.]+ messages/s", out, re.M)
    assert "with" in rates, out
    assert re.search(r"^  outcomes: done \d+$", out, re.M), out  # every mail made its ticket
    if _search_engine_present():
        # Every query ran, with its hits and latencies.
        rows = re.findall(r"^(.{58})\s*(\d+\+?)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
        assert len(rows) == len(bench.QUERIES), out
        assert re.search(rf"^p95 <= 300 ms: \d+ of {len(bench.QUERIES)} queries", out, re.M), out
        assert rates.count("without") == 1, out
        assert re.search(r"^ingest with / without: [\d.]+x", out, re.M), out
    else:
        assert f"queries ({dbs}): skipped, this mailgate has no search engine" in out
    # A second run takes the kept desk instead of generating it again.
    assert bench.main([*argv, "--reuse"]) == 0
    again = capsys.readouterr().out
    assert re.search(rf"^{dbs}: 1000 tickets, .* reused, generated earlier in", again, re.M)


def test_web_benchmark_runs_on_a_tiny_desk(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("web", monkeypatch)
    argv = ["--tickets", "300", "--users", "2", "--requests", "6", "--messages", "12"]
    argv += ["--clients", "2"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^desk: 300 tickets, \d+ articles", out, re.M), out
    for kind in ("queue page", "ticket page", "search"):
        row = rf"^  {kind}\s+4 requests  p50\s+[\d.]+ ms  p95\s+[\d.]+ ms"
        assert re.search(row, out, re.M), out
    assert "FAILED requests" not in out  # every page answered 200
    assert len(re.findall(r"^  web desk (on|off)\s+\d+ msg/s \(rounds \d+, \d+\)$", out, re.M)) == 2
    assert re.search(r"^intake with / without the web desk: [\d.]+x", out, re.M), out
