"""Statistics on the web desk: `mailgate stats`'s figures, the last seven days as SVG bars."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.daemon_harness import SUPPORT, connect, write_toml
from tests.helpers import poll
from tests.mails import make_mail
from tests.test_cli import mailgate
from tests.web_desk import web_desk


def test_the_statistics_page_shows_what_mailgate_stats_counts(tmp_path: Path) -> None:
    with web_desk(tmp_path) as desk, desk.client() as agent:
        desk.add_agent()
        with connect(desk.daemon.address) as client:
            for n in range(3):
                sender = f"customer{n}@shop{n}.example"
                client.sendmail(sender, [SUPPORT], make_mail(subject=f"Order {n}", sender=sender))
        desk.sign_in(agent)
        poll(lambda: "CID-1002" in agent.get("/desk").text, what="three tickets")
        page = agent.get("/desk/stats")
        assert page.status_code == 200
        printed = mailgate("stats", "--format", "json", config=write_toml(desk.daemon.config))
        stats = json.loads(printed.stdout)
    opened = [d["opened"] for d in stats["opened_per_day"]]
    assert opened[-1] == 3
    chart = re.search(r'<svg id="opened-chart".*?</svg>', page.text, re.S)
    assert chart is not None
    titles = re.findall(r"<title>(\d\d-\d\d): (\d+)</title>", chart[0])
    assert [int(n) for _, n in titles] == opened  # one bar a day, today's the last
    assert titles[-1][0] == stats["to"][5:]
    totals = re.search(r"<tr><th>Σ</th>(.*?)</tr>", page.text, re.S)
    assert totals is not None and re.findall(r"<th>(\d+)</th>", totals[1])[-1] == "3"
    assert "<script" not in chart[0] and "style=" not in chart[0]
