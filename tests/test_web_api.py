"""The JSON API: bearer tokens made by `mailgate api-token`, tickets listed, shown and
searched as the command line's JSON has them, a ticket opened as its customer's mail and an
answer written as the token's agent's; the OpenAPI schema served."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.daemon_harness import SUPPORT, connect, write_toml
from tests.helpers import parsed, poll
from tests.mails import make_mail
from tests.test_cli import mailgate
from tests.web_desk import AGENT, Desk, web_desk


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    with web_desk(tmp_path) as running:
        running.add_agent()
        with connect(running.daemon.address) as client:
            mail = make_mail(subject="Printer broken", sender="Alice <alice@acme.example>")
            client.sendmail("alice@acme.example", [SUPPORT], mail)
        yield running  # type: ignore[misc]


def token(desk: Desk, name: str, *agent: str) -> str:
    made = mailgate("api-token", "add", name, *agent, config=write_toml(desk.daemon.config))
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def api(desk: Desk, bearer: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {bearer}"}
    return httpx.Client(base_url=desk.url + "/api/v1", headers=headers, timeout=30)


def test_an_integration_reads_and_opens_tickets_and_an_agents_token_answers(desk: Desk) -> None:
    shop, helper = token(desk, "shop"), token(desk, "helpdesk-bot", "--agent", AGENT)
    assert len(shop) >= 43  # 256 bits, URL-safe
    with api(desk, shop) as client:
        listed = poll(lambda: client.get("/tickets").json(), what="the ticket over the API")
        assert [(t["cid"], t["subject"], t["status"]) for t in listed] == [
            ("CID-1000", "Printer broken", "open")
        ]
        shown = client.get("/tickets/CID-1000").json()
        assert shown["articles"][0]["text"].startswith("Our printer does not print.")
        assert [h["cid"] for h in client.get("/search", params={"q": "printer"}).json()] == [
            "CID-1000"
        ]
        new = {"from_address": "bert@shop.example", "from_name": "Bert"}
        new |= {"subject": "Parcel missing", "text": "Nothing arrived.", "reference": "A-4711"}
        opened = client.post("/tickets", json=new)
        assert opened.status_code == 201 and opened.json()["cid"] == "CID-1001"
        refused = client.post("/tickets/CID-1001/articles", json={"text": "Hello"})
        assert refused.status_code == 403 and "no agent" in refused.json()["detail"]
        assert client.get("/tickets/CID-4711").status_code == 404
        bad = client.get("/tickets", params={"status": "maybe"})
        assert bad.status_code == 400 and "--status" in bad.json()["detail"]
    acks = poll(lambda: [parsed(p.read_bytes()) for p in sorted(desk.sent.glob("*-ack*.eml"))][1:],
                what="Bert's acknowledgement")  # fmt: skip
    assert acks[0]["To"] == "bert@shop.example" and "[CID-1001]" in acks[0]["Subject"]
    with api(desk, helper) as client:
        answered = client.post("/tickets/CID-1001/articles",
                               json={"text": "Hello Bert,\n\nit is on its way again."})  # fmt: skip
        assert answered.status_code == 201, answered.text
        shown = client.get("/tickets/CID-1001").json()
    staff = [a for a in shown["articles"] if a["direction"] == "staff"]
    assert [a["from"] for a in staff] == [AGENT]
    answers = poll(lambda: sorted(desk.sent.glob("*-staff_answer.eml")), what="the answer")
    assert "it is on its way again." in parsed(answers[0].read_bytes()).as_string()


def test_requests_without_an_open_token_are_refused(desk: Desk) -> None:
    shop = token(desk, "shop")
    with httpx.Client(base_url=desk.url + "/api/v1") as anonymous:
        assert anonymous.get("/tickets").status_code == 401
    with api(desk, "x" * 43) as guesser:
        assert guesser.get("/tickets").json()["detail"].startswith("this token is not known")
    config = write_toml(desk.daemon.config)
    assert mailgate("api-token", "revoke", "shop", config=config).returncode == 0
    with api(desk, shop) as client:
        assert client.get("/tickets").status_code == 401
    again = mailgate("api-token", "add", "shop", config=config)
    assert again.returncode == 65 and "exists already" in again.stderr
    listed = mailgate("api-token", "list", "--format", "json", config=config)
    assert '"revoked": true' in listed.stdout and shop not in listed.stdout


def test_the_openapi_schema_is_served_and_lists_only_the_api(desk: Desk) -> None:
    with httpx.Client(base_url=desk.url) as client:
        schema = client.get("/api/openapi.json").json()
    assert set(schema["paths"]) == {
        "/api/v1/tickets",
        "/api/v1/tickets/{cid}",
        "/api/v1/search",
        "/api/v1/tickets/{cid}/articles",
    }
    assert "post" in schema["paths"]["/api/v1/tickets"]
