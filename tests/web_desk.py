"""A daemon with its web desk on loopback, for the web tests: the desk's address, its agents,
and the sign-in links it mails (read where the file transport leaves them)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from mailgate.config import WebConfig
from mailgate.desk.agents import add_agent
from mailgate.web.server import WebDesk
from tests.daemon_harness import DaemonThread, daemon_config
from tests.helpers import free_port, parsed, poll

AGENT = "bob@example.com"
LINK = re.compile(r"https?://\S+/sign-in/[A-Za-z0-9_-]+(?:\?to=[A-Za-z0-9-]+)?")


@dataclass
class Desk:
    daemon: DaemonThread
    url: str  # the web desk's root, e.g. http://127.0.0.1:8125
    sent: Path

    def add_agent(self, address: str = AGENT, name: str = "Bob Agent", lang: str = "en") -> None:
        with self.daemon.ctx.store.session() as session:
            add_agent(session, address, name, lang, self.daemon.ctx.clock())

    def links_to(self, address: str) -> list[str]:
        """The sign-in links mailed to the address so far, oldest first."""
        found = []
        for path in sorted(self.sent.glob("*-sign_in.eml")):
            message = parsed(path.read_bytes())
            if address in str(message["To"]):
                body = message.get_body(("plain",))
                assert body is not None
                found += LINK.findall(body.get_content())
        return found

    def ask_for_link(self, client: httpx.Client, address: str = AGENT) -> str:
        """The link mailed after asking for one on the sign-in page, as a person would."""
        before = len(self.links_to(address))
        answer = client.post("/sign-in", data={"address": address}, headers=self.origin)
        assert answer.status_code == 200
        return poll(lambda: self.links_to(address)[before:], what="the sign-in mail")[0]

    def sign_in(self, client: httpx.Client, address: str = AGENT) -> None:
        link = self.ask_for_link(client, address)
        answer = client.post(link, headers=self.origin)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/desk"

    def form_fields(self, client: httpx.Client, cid: str) -> dict[str, str]:
        """The hidden fields of a ticket page's form, as the page was just opened."""
        page = client.get(f"/desk/tickets/{cid}")
        assert page.status_code == 200, page.text
        return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    @property
    def origin(self) -> dict[str, str]:
        return {"Origin": self.url}


@contextmanager
def web_desk(tmp_path: Path, customer_links: bool = True, **changes: object) -> Iterator[Desk]:
    """The daemon of daemon_config with its web desk; `changes`: other sections of Config."""
    port = free_port()
    cfg = daemon_config(tmp_path)
    web = WebConfig(listen=f"127.0.0.1:{port}", customer_links=customer_links)
    cfg = dataclasses.replace(cfg, web=web, **changes)  # type: ignore[arg-type]
    daemon = DaemonThread(cfg, [WebDesk(cfg.web.listen)])
    daemon.start()
    try:
        yield Desk(daemon, f"http://127.0.0.1:{port}", tmp_path / "sent")
    finally:
        daemon.shutdown()
