"""The soak benchmark runs: half a minute of mixed load on a real daemon, sampled every 5 s,
with its latency lines and its verdict; and its verdict's arithmetic on made-up samples."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SAMPLE = re.compile(
    r"^sample\s+(\d+:\d\d)\s+(\S+)\s+pid\s+\d+\s+RSS\s+([\d.]+) MB\s+PSS\s+([\d.]+) MB"
    r"\s+fds\s+(\d+)$",
    re.M,
)
LATENCY = re.compile(
    r"^minute\s+1\s+smtp sent\s+(\d+) answered\s+(\d+)\s+p50\s+(\d+) ms\s+p99\s+(\d+) ms"
    r"\s+\|\s+imap sent\s+(\d+) answered\s+(\d+)\s+p50\s+[\d.]+ s\s+p99\s+[\d.]+ s"
    r"\s+\|\s+list (\d+)/(\d+)$",
    re.M,
)


@pytest.mark.slow
def test_soak_runs_half_a_minute_and_prints_samples_latencies_and_verdict() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "soak.py"), "--minutes", "0.5", "--interval", "5"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    # Every process of the tree, sampled at the start, every 5 s and at the end.
    times: dict[str, list[str]] = {}
    for at, role, rss, pss, fds in SAMPLE.findall(out):
        times.setdefault(role, []).append(at)
        assert float(rss) > 0 and float(pss) > 0 and int(fds) > 0, out
    roles = {"daemon", "fork-server", "resource-tracker", "worker"}
    if (os.cpu_count() or 1) >= 2:
        roles.add("parser")  # the parse-ahead helper
    assert roles <= set(times), out
    for role in roles:
        seconds = [int(at.split(":")[0]) * 60 + int(at.split(":")[1]) for at in times[role]]
        assert len(seconds) == 7 and seconds[0] == 0, out
        # A busy machine may take a sample a moment late.
        assert all(0 <= s - 5 * n <= 2 for n, s in enumerate(seconds)), out
    # The one (half) minute's latencies: every request sent was answered.
    latency = LATENCY.search(out)
    assert latency is not None, out
    smtp_sent, smtp_answered, p50, p99, imap_sent, imap_answered, lists, lists_answered = map(
        int, latency.groups()
    )
    assert smtp_sent > 50 and smtp_answered == smtp_sent and p50 <= p99, out
    assert imap_sent >= 5 and imap_answered == imap_sent, out
    assert lists == lists_answered >= 1, out
    # The verdict: the warm-up named, a line per process, every mail stored and answered.
    assert "verdict (warm-up until 0:05 (the first sixth of a run under 10 minutes)" in out, out
    for role in roles:
        line = rf"^{re.escape(role)}\s+PSS [\d.]+ MB at 0:0[5-7], end [\d.]+, max after .*fds"
        assert re.search(line, out, re.M), out
    assert re.search(r"^memory and descriptors: (met|NOT MET)$", out, re.M), out
    assert re.search(r"^stored: imap (\d+) of \1, smtp (\d+) of \2: all$", out, re.M), out
    assert re.search(r"without one: 0; unexpected \(.*\): 0$", out, re.M), out
    answered = re.search(r"^requests answered: (\d+) of (\d+)$", out, re.M)
    assert answered is not None and answered[1] == answered[2], out
    assert int(answered[2]) == smtp_sent + imap_sent + lists, out
    assert "daemon log: 0 tracebacks" in out, out
    assert "daemon: alive throughout; exit 0 after SIGTERM" in out, out
    assert out.rstrip().endswith("result: nothing lost, nothing unexpected, no traceback"), out


def test_soak_verdict_takes_the_trend_from_the_end_of_the_warm_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from soak_verdict import trends
    from soak_watch import MB, Sample

    def sample(at: float, role: str, pss: float, fds: int, pid: int = 1) -> Sample:
        return Sample(at, role, pid, int(pss * 1.5 * MB), int(pss * MB), fds)

    samples = [
        *(sample(at, "daemon", 50 + at, 20) for at in (0, 60, 120)),  # warming up: not counted
        sample(300, "daemon", 100, 20),
        sample(600, "daemon", 109, 28),  # +9 %, 8 more descriptors: both still met
        sample(0, "worker", 60, 10),
        sample(300, "worker", 60, 10),
        sample(450, "worker", 67, 10, pid=2),  # +11.7 % at its highest, restarted
        sample(600, "worker", 61, 19, pid=2),  # 9 more descriptors than at minute five
    ]
    daemon, worker = trends(samples, warm=300)
    assert (daemon.base.at, daemon.end.at, daemon.pids) == (300, 600, 1)
    assert daemon.growth("pss") == pytest.approx(0.09)
    assert daemon.memory_met and daemon.fds_met
    assert worker.growth("pss") == pytest.approx(7 / 60) and not worker.memory_met
    assert worker.peak_pss == 67 * MB and worker.end.pss == 61 * MB
    assert not worker.fds_met and worker.pids == 2
