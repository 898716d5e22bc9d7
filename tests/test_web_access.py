"""Signing in to the web desk by a mailed link, over real HTTP to the daemon's web server:
a link works once and only by its page's button, forms come only from the desk's own pages,
sessions end when asked, and guessing links is braked."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from mailgate.desk.web_access import issue_link
from mailgate.store.models import Agent, WebLink, WebSession
from mailgate.web import desk_pages
from mailgate.web.guard import FAILED_LIMIT, FailedTokens
from tests.daemon_harness import SUPPORT, connect, write_toml
from tests.helpers import poll
from tests.mails import make_mail
from tests.test_cli import mailgate
from tests.web_desk import AGENT, Desk, web_desk


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    with web_desk(tmp_path) as running:
        running.add_agent()
        yield running  # type: ignore[misc]


def test_a_mailed_link_signs_in_once_and_opening_it_uses_nothing(desk: Desk) -> None:
    with desk.client() as browser:
        assert browser.get("/desk").headers["location"] == "/sign-in"
        link = desk.ask_for_link(browser)
        # A mail scanner opens the link (twice, say): the page only offers a button.
        for _ in range(2):
            opened = browser.get(link)
            assert opened.status_code == 200
            assert 'id="confirm-sign-in"' in opened.text
        signed = browser.post(link, headers=desk.origin)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        queue = browser.get("/desk")
        assert queue.status_code == 200 and "Bob Agent" in queue.text
        # Used: neither its page nor its button signs anyone in again.
        with desk.client() as other:
            assert other.get(link).status_code == 410
            again = other.post(link, headers=desk.origin)
            assert again.status_code == 410 and "was used already" in again.text
            assert other.get("/desk").headers["location"] == "/sign-in"


def test_the_link_goes_only_to_the_agent_and_strangers_learn_nothing(desk: Desk) -> None:
    with desk.client() as browser:
        known = browser.post("/sign-in", data={"address": "BOB@example.com"}, headers=desk.origin)
        unknown = browser.post(
            "/sign-in", data={"address": "mallory@example.com"}, headers=desk.origin
        )
    assert known.status_code == unknown.status_code == 200
    said = re.compile(r'<p class="notice" id="link-sent">(.*?)</p>')
    assert said.findall(known.text) == said.findall(unknown.text) != []
    assert len(poll(lambda: desk.links_to(AGENT), what="the agent's link")) == 1
    assert desk.links_to("mallory@example.com") == []
    mails = list(desk.sent.glob("*-sign_in.eml"))
    assert len(mails) == 1 and b"mallory" not in mails[0].read_bytes()


def test_expired_revoked_and_unknown_links_are_refused(desk: Desk) -> None:
    ctx = desk.daemon.ctx
    with ctx.store.session() as session:
        agent = session.exec(select(Agent)).one()
        expired = issue_link(session, agent, ctx.clock() - timedelta(minutes=20), 15)
        revoked = issue_link(session, agent, ctx.clock(), 15)
        session.flush()
        for link in session.exec(select(WebLink)):
            if link.expires_at > ctx.clock():
                link.revoked_at = ctx.clock()
    with desk.client() as browser:
        for token, status, why in (
            (expired, 410, "has expired"),
            (revoked, 410, "was revoked"),
            ("x" * 43, 404, "is not known"),
        ):
            page = browser.get(f"/sign-in/{token}")
            assert (page.status_code, why in page.text) == (status, True)
            assert browser.post(f"/sign-in/{token}", headers=desk.origin).status_code == status
        assert browser.get("/desk").headers["location"] == "/sign-in"


def test_an_inactive_agent_cannot_sign_in_nor_stay_signed_in(desk: Desk) -> None:
    ctx = desk.daemon.ctx
    with desk.client() as browser:
        desk.sign_in(browser)
        link = desk.ask_for_link(browser)
        with ctx.store.session() as session:
            agent = session.exec(select(Agent)).one()
            agent.active = False
        assert browser.get("/desk").headers["location"] == "/sign-in"
        assert browser.post(link, headers=desk.origin).status_code == 410


def test_forms_from_another_site_or_without_the_form_token_are_refused(desk: Desk) -> None:
    with desk.client() as browser:
        desk.sign_in(browser)
        token = re.search(r'name="form_token" value="([^"]+)"', browser.get("/desk").text)
        assert token is not None
        forged = {"Origin": "https://evil.example"}
        for data, headers in (
            ({}, desk.origin),  # no form token
            ({"form_token": "wrong"}, desk.origin),
            ({"form_token": token[1]}, forged),  # the right token from another site's page
            ({"form_token": token[1]}, {"Sec-Fetch-Site": "cross-site", "Origin": "null"}),
        ):
            refused = browser.post("/sign-out", data=data, headers=headers)
            assert refused.status_code == 403 and "was not sent from" in refused.text
            assert browser.get("/desk").status_code == 200  # still signed in
        # Asking for a link and pressing a link's button from another site: refused too.
        assert browser.post("/sign-in", data={"address": AGENT}, headers=forged).status_code == 403
        signed_out = browser.post("/sign-out", data={"form_token": token[1]}, headers=desk.origin)
        assert signed_out.status_code == 303
        assert browser.get("/desk").headers["location"] == "/sign-in"


def test_sign_out_ends_the_session_even_for_a_copied_cookie(desk: Desk) -> None:
    with desk.client() as browser:
        desk.sign_in(browser)
        stolen = dict(browser.cookies)
        token = re.search(r'name="form_token" value="([^"]+)"', browser.get("/desk").text)
        assert token is not None
        browser.post("/sign-out", data={"form_token": token[1]}, headers=desk.origin)
    with httpx.Client(base_url=desk.url, cookies=stolen) as thief:
        assert thief.get("/desk").headers["location"] == "/sign-in"


def test_sessions_are_listed_and_one_revoked_from_another(desk: Desk) -> None:
    with desk.client() as laptop, desk.client() as phone:
        desk.sign_in(laptop)
        desk.sign_in(phone)
        listed = laptop.get("/desk/sessions")
        ids = re.findall(r'action="/desk/sessions/(\d+)/revoke"', listed.text)
        assert len(ids) == 2 and "this browser" in listed.text
        token = re.search(r'name="form_token" value="([^"]+)"', listed.text)
        assert token is not None
        with desk.daemon.ctx.store.session() as session:
            newest = max(s.id or 0 for s in session.exec(select(WebSession)))
        revoked = laptop.post(
            f"/desk/sessions/{newest}/revoke", data={"form_token": token[1]}, headers=desk.origin
        )
        assert revoked.status_code == 303
        assert phone.get("/desk").headers["location"] == "/sign-in"
        assert laptop.get("/desk").status_code == 200


def test_failed_tokens_are_braked_per_client(desk: Desk) -> None:
    with desk.client() as guesser:
        for n in range(FAILED_LIMIT):
            assert guesser.get(f"/sign-in/guess{n:040d}").status_code == 404
        link = desk.ask_for_link(guesser)
        braked = guesser.get(link)
        assert braked.status_code == 429 and "Too many attempts" in braked.text
        assert guesser.post(link, headers=desk.origin).status_code == 429


def test_every_page_forbids_inline_script_and_framing(desk: Desk) -> None:
    with connect(desk.daemon.address) as client:
        client.sendmail("eve@evil.example", [SUPPORT], make_mail(subject="Broken"))
    with desk.client() as browser:
        pages = ["/sign-in", "/sign-in/" + "x" * 43, "/static/desk.css"]
        desk.sign_in(browser)
        poll(lambda: "CID-1000" in browser.get("/desk").text, what="the ticket in the queue")
        pages += ["/desk", "/desk?queue=closed", "/desk/tickets/CID-1000", "/desk/sessions"]
        pages += ["/desk/tickets/CID-9999", "/desk?q=%22unbalanced"]
        for path in pages:
            answer = browser.get(path)
            policy = answer.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
            assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
            scripts = re.findall(r"<script\b[^>]*>", answer.text)
            assert all('src="/static/' in tag for tag in scripts), path
            assert not re.search(r"<[^>]+\son\w+\s*=", answer.text), path


def test_deactivating_an_agent_ends_their_web_sessions(desk: Desk) -> None:
    config = write_toml(desk.daemon.config)
    with desk.client() as browser:
        desk.sign_in(browser)
        stopped = mailgate("agents", "deactivate", AGENT.upper(), config=config)
        assert stopped.returncode == 0 and f"deactivated agent {AGENT}" in stopped.stdout
        assert browser.get("/desk").headers["location"] == "/sign-in"
        browser.post("/sign-in", data={"address": AGENT}, headers=desk.origin)
        unknown = mailgate("agents", "deactivate", "nobody@example.com", config=config)
        assert unknown.returncode == 65 and "no agent nobody@example.com" in unknown.stderr
        assert mailgate("agents", "activate", AGENT, config=config).returncode == 0
        desk.sign_in(browser)
        assert browser.get("/desk").status_code == 200
    assert len(desk.links_to(AGENT)) == 2  # none while deactivated


def test_errors_are_answered_in_words_never_with_a_traceback(desk: Desk) -> None:
    file = ("manual.pdf", "application/pdf", b"%PDF-1.4 manual")
    with connect(desk.daemon.address) as client:
        client.sendmail("eve@evil.example", [SUPPORT], make_mail(attachments=(file,)))
    with desk.client() as browser:
        desk.sign_in(browser)
        poll(lambda: "CID-1000" in browser.get("/desk").text, what="the ticket")
        token = re.search(r'name="form_token" value="([^"]+)"', browser.get("/desk").text)
        assert token is not None
        bad = browser.post(
            "/desk/tickets/CID-1000/mail",
            data={"form_token": token[1], "seen": "yesterday", "text": "Hi"},
            headers=desk.origin,
        )
        assert bad.status_code == 400 and "not one the desk&#39;s pages send" in bad.text
        for blob in (Path(desk.daemon.config.paths.data_dir) / "blobs").rglob("*"):
            if blob.is_file():
                blob.unlink()  # the file's bytes lost on disk
        lost = browser.get("/desk/files/1")
        assert lost.status_code == 500 and "Something went wrong" in lost.text
        assert "Traceback" not in lost.text and "content-security-policy" in lost.headers


def test_the_search_box_finds_in_every_queue_and_explains_a_bad_query(desk: Desk) -> None:
    with connect(desk.daemon.address) as client:
        for subject in ("Invoice 4711 is wrong", "Printer broken"):
            client.sendmail("eve@evil.example", [SUPPORT], make_mail(subject=subject))
    with desk.client() as browser:
        desk.sign_in(browser)
        poll(lambda: "CID-1001" in browser.get("/desk").text, what="both tickets")
        found = browser.get("/desk", params={"queue": "closed", "q": "invoice"}).text
        assert re.findall(r'<span class="subject">([^<]*)</span>', found) == [
            "Invoice 4711 is wrong"
        ]
        bad = browser.get("/desk", params={"q": "assignee:nobody"})
        assert bad.status_code == 200
        assert "assignee:nobody: no agent by that address or name" in bad.text


def test_a_queue_is_read_page_by_page(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(desk_pages, "QUEUE_SIZE", 2)
    with connect(desk.daemon.address) as client:
        for n in range(5):
            client.sendmail("eve@evil.example", [SUPPORT], make_mail(subject=f"Request {n}"))
    with desk.client() as browser:
        desk.sign_in(browser)
        poll(lambda: "CID-1004" in browser.get("/desk").text, what="the five tickets")
        shown, links = [], []
        for number in (1, 2, 3):
            page = browser.get("/desk", params={"queue": "open", "n": number}).text
            shown += re.findall(r'class="open" href="/desk/tickets/(CID-\d+)"', page)
            links.append(re.findall(r'rel="(prev|next)"', page))
    assert shown == [f"CID-{n}" for n in range(1004, 999, -1)]  # newest activity first
    assert links == [["next"], ["prev", "next"], ["prev"]]


def test_the_brake_forgets_a_client_once_its_failures_are_old() -> None:
    brake = FailedTokens(limit=2, window=0.2)
    brake.failed("192.0.2.1")
    brake.failed("192.0.2.1")
    assert brake.blocked("192.0.2.1") and not brake.blocked("192.0.2.2")
    time.sleep(0.3)
    assert not brake.blocked("192.0.2.1")
    assert brake._times == {}  # asking about clients adds none; old ones are dropped
