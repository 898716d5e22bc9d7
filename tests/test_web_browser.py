"""The web desk in a real browser (Debian's Chromium, driven by Selenium), served by a real
`mailgate run`: an agent signs in from the mailed link, finds a hostile customer's ticket in
the queue by keyboard, and reads it, and no script the mail carried runs on any page.

MAILGATE_SCREENSHOTS=DIR keeps screenshots of the pages there (the README's are made so)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.daemon_harness import SUPPORT, Sink, connect, smtp_server
from tests.helpers import free_port, poll
from tests.mails import make_mail
from tests.web_desk import AGENT, LINK

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# What the hostile mail tries: each payload, if it ran, would set window.__xss or alert.
HOSTILE_NAME = '"<script>window.__xss=1</script>Eve" <eve@evil.example>'
HOSTILE_SUBJECT = '<img src=x onerror="window.__xss=2"> printer </title><script>alert(3)</script>'
HOSTILE_TEXT = "It broke.\n<script>window.__xss=4</script>\n"
HOSTILE_HTML = (
    '<p>It broke.</p><script>window.__xss=5</script><img src=x onerror="alert(6)">'
    '<a href="javascript:window.__xss=7">here</a>'
)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 16 + b"\n%%EOF\n"
HOSTILE_FILE = ('"><img src=x onerror=alert(8)>.html', "text/html", b"<script>alert(9)</script>")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class RunningDesk:
    url: str  # the web desk
    smtp: tuple[str, int]  # mailgate's SMTP intake
    relay: Sink  # where mailgate's outgoing mail arrives


@pytest.fixture
def desk_process(tmp_path: Path) -> Iterator[RunningDesk]:
    """`mailgate run` with its web desk, its outgoing mail going to an SMTP relay here."""
    relay = Sink()
    smtp_port, web_port = free_port(), free_port()
    config = tmp_path / "mailgate.toml"
    with smtp_server(relay) as relay_port:
        config.write_text(
            f'[database]\nurl = "sqlite:///{tmp_path}/mailgate.db"\n'
            f'[paths]\ndata_dir = "{tmp_path}/data"\n'
            f'[smtp]\nlisten = "127.0.0.1:{smtp_port}"\naddresses = ["{SUPPORT}"]\n'
            f'[outbound]\ntransport = "smtp"\nport = {relay_port}\nfrom = "Support <{SUPPORT}>"\n'
            f'[http]\nlisten = ""\n[web]\nlisten = "127.0.0.1:{web_port}"\n',
            encoding="utf-8",
        )
        mailgate = [sys.executable, "-m", "mailgate", "-c", str(config)]
        added = subprocess.run([*mailgate, "agents", "add", AGENT, "--name", "Bob Agent"],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert added.returncode == 0, added.stderr
        log = (tmp_path / "daemon.log").open("wb")
        daemon = subprocess.Popen([*mailgate, "run"], stderr=log)
        try:
            poll(lambda: b"event=web_listening" in (tmp_path / "daemon.log").read_bytes(),
                 timeout=30, what="the web desk")  # fmt: skip
            yield RunningDesk(f"http://127.0.0.1:{web_port}", ("127.0.0.1", smtp_port), relay)
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(30) == 0
            log.close()


def nothing_ran(driver: WebDriver) -> None:
    assert driver.execute_script("return window.__xss === undefined") is True
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 (reading it is the check)


def arrives(driver: WebDriver, address: str) -> None:
    """Waits for the page a click leads to (a click returns before the page has loaded)."""
    poll(lambda: driver.current_url == address, what=address)


def text_of(driver: WebDriver, element_id: str) -> str:
    """The element's text, or "" while a click's page is replacing the one it was on (the
    element found on the old page is gone when its text is read)."""
    try:
        return driver.find_element(By.ID, element_id).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def screenshot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("MAILGATE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def test_an_agent_signs_in_from_the_mail_answers_with_a_file_and_no_script_runs(
    browser: WebDriver, desk_process: RunningDesk, tmp_path: Path
) -> None:
    url, smtp, relay = desk_process.url, desk_process.smtp, desk_process.relay
    hostile = make_mail(subject=HOSTILE_SUBJECT, body=HOSTILE_TEXT, sender=HOSTILE_NAME,
                        html=HOSTILE_HTML, attachments=(HOSTILE_FILE,))  # fmt: skip
    plain = make_mail(subject="Invoice 4711 is wrong", sender="Carla <carla@shop.example>")
    with connect(smtp) as client:
        client.sendmail("eve@evil.example", [SUPPORT], hostile)
        client.sendmail("carla@shop.example", [SUPPORT], plain)

    browser.get(url + "/desk")
    assert browser.current_url == url + "/sign-in"
    browser.find_element(By.ID, "address").send_keys(AGENT)
    browser.find_element(By.ID, "send-link").click()
    said = poll(lambda: browser.find_elements(By.ID, "link-sent"), what="the page's answer")
    assert "sign-in link is on its way" in said[0].text
    mail = poll(lambda: relay.to(AGENT), what="the sign-in mail at the relay")[0].message
    body = mail.get_body(("plain",))
    assert body is not None
    link = LINK.findall(body.get_content())[0]

    browser.get(link)  # as the agent's click in the mail would open it
    browser.find_element(By.ID, "confirm-sign-in").click()
    arrives(browser, url + "/desk")
    poll(lambda: browser.refresh() or len(browser.find_elements(By.CSS_SELECTOR, "tr.row")) == 2,
         what="both tickets in the queue")  # fmt: skip
    nothing_ran(browser)
    subjects = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "td.subject")]
    assert any("onerror" in s and "<script>" in s for s in subjects)  # shown, as text
    screenshot(browser, "staff-queue")
    browser.set_window_size(390, 844)  # a phone: the queue fits its width
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    browser.set_window_size(1280, 900)

    # The keyboard: j to the first row (the newest, Carla's), j to Eve's, o to open it.
    body_element = browser.find_element(By.TAG_NAME, "body")
    row = browser.find_elements(By.CSS_SELECTOR, "tr.row")[1]
    body_element.send_keys("jj")
    assert "selected" in row.get_attribute("class")
    body_element.send_keys("o")
    poll(lambda: "/desk/tickets/" in browser.current_url, what="the ticket page")
    heading = browser.find_element(By.ID, "subject").text
    assert heading.startswith("<img src=x") and "</title><script>" in heading
    assert "<script>window.__xss=1</script>Eve" in browser.find_element(By.CLASS_NAME, "from").text
    browser.find_element(By.TAG_NAME, "body").send_keys("n")  # n: a note, r: an answer
    assert browser.find_element(By.CSS_SELECTOR, "input[value=note]").is_selected()
    assert browser.switch_to.active_element.get_attribute("id") == "text"
    browser.find_element(By.TAG_NAME, "h1").click()  # leave the text box for the next key
    browser.find_element(By.TAG_NAME, "body").send_keys("r")
    assert browser.find_element(By.CSS_SELECTOR, "input[value=answer]").is_selected()
    browser.find_element(By.TAG_NAME, "summary").click()  # the mail as HTML, in its frame
    frame = browser.find_element(By.CSS_SELECTOR, "iframe.html")
    assert frame.get_attribute("sandbox") == ""
    files = browser.find_elements(By.CSS_SELECTOR, "ul.files a")
    assert len(files) == 1 and files[0].get_attribute("download") is not None
    nothing_ran(browser)
    browser.switch_to.frame(frame)
    assert "It broke." in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_elements(By.TAG_NAME, "script") == []
    nothing_ran(browser)
    browser.switch_to.default_content()
    screenshot(browser, "staff-ticket")

    # The answer, with a file, as the customer receives it from the relay.
    manual = tmp_path / "Handbuch Drucker.pdf"
    manual.write_bytes(PDF)
    browser.find_element(By.ID, "text").send_keys("Hello Eve,\n\nthe manual is attached.")
    browser.find_element(By.ID, "files").send_keys(str(manual))
    browser.find_element(By.ID, "send").click()
    poll(lambda: relay.to("eve@evil.example")[1:], what="the answer at the relay")
    answer = relay.to("eve@evil.example")[-1].message
    assert "the manual is attached." in answer.get_body(("plain",)).get_content()
    files = {p.get_filename(): p.get_payload(decode=True) for p in answer.iter_attachments()}
    assert files == {"Handbuch Drucker.pdf": PDF}
    shown = poll(
        lambda: [a.text for a in browser.find_elements(By.CSS_SELECTOR, "article.dir-staff")],
        what="the answer on the ticket's page",
    )
    assert "the manual is attached." in shown[-1]
    nothing_ran(browser)

    browser.get(url + "/desk/stats")  # the week's charts, drawn by the server
    bars = browser.find_elements(By.CSS_SELECTOR, "#opened-chart rect")
    assert len(bars) == 7 and bars[-1].size["height"] > 0  # today's: two tickets
    screenshot(browser, "staff-stats")
    nothing_ran(browser)

    # `/` goes to the search box; as the words are typed, the results replace the page's
    # main part (htmx), no new page loaded (the page's own mark stays).
    browser.get(url + "/desk")
    browser.execute_script("window.__same_page = 1")
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    browser.switch_to.active_element.send_keys("invoice 4711")
    found = poll(lambda: browser.find_elements(By.CSS_SELECTOR, "#found span.subject"),
                 what="the search's results")  # fmt: skip
    assert [r.text for r in found] == ["Invoice 4711 is wrong"]
    assert browser.execute_script("return window.__same_page") == 1
    poll(lambda: "q=invoice" in browser.current_url, what="the address of the results")
    refused = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []  # htmx runs under the desk's policy: no inline style, no eval
    browser.find_element(By.CSS_SELECTOR, "form.inline button").click()  # sign out
    arrives(browser, url + "/sign-in")
    browser.get(url + "/desk")
    assert browser.current_url == url + "/sign-in"


def test_a_customer_replies_confirms_and_a_stranger_finds_nothing(
    browser: WebDriver, desk_process: RunningDesk
) -> None:
    url, smtp, relay = desk_process.url, desk_process.smtp, desk_process.relay
    with connect(smtp) as client:
        for sender in ("Alice <alice@acme.example>", "Bert <bert@other.example>"):
            address = sender.split("<")[1].rstrip(">")
            client.sendmail(address, [SUPPORT], make_mail(subject="Printer broken", sender=sender))
    poll(lambda: relay.to("bert@other.example"), what="both acknowledgements")

    def open_link(mail: EmailMessage) -> None:
        """A click on the link in a mail, in a browser that holds no session yet."""
        browser.delete_all_cookies()
        body = mail.get_body(("plain",))
        assert body is not None
        browser.get(LINK.findall(body.get_content())[0])
        browser.find_element(By.ID, "confirm-sign-in").click()

    def sign_in(address: str) -> None:
        browser.delete_all_cookies()
        browser.get(url + "/sign-in")
        browser.find_element(By.ID, "address").send_keys(address)
        before = len(relay.to(address))
        browser.find_element(By.ID, "send-link").click()
        open_link(poll(lambda: relay.to(address)[before:], what="the link")[0].message)

    # Alice clicks the link in her acknowledgement: it leads to her request.
    open_link(relay.to("alice@acme.example")[0].message)
    arrives(browser, url + "/my/tickets/CID-1000")
    browser.find_element(By.ID, "text").send_keys("It still jams on page two.")
    browser.find_element(By.ID, "send").click()
    poll(lambda: "It still jams on page two." in browser.page_source, what="the reply shown")
    nothing_ran(browser)

    # The agent answers and delivers it on the ticket's form; Alice follows the link in the
    # answer, confirms on the page, and the ticket is closed.
    sign_in(AGENT)
    arrives(browser, url + "/desk")
    browser.get(url + "/desk/tickets/CID-1000")
    browser.find_element(By.ID, "text").send_keys("A new roller is on its way.")
    browser.find_element(By.CSS_SELECTOR, "select[name=status]").send_keys("delivered")
    browser.find_element(By.ID, "send").click()
    poll(lambda: "A new roller" in browser.page_source, what="the answer stored")
    answer = poll(lambda: relay.to("alice@acme.example")[1:], what="the answer")[0].message
    assert "A new roller is on its way." in answer.get_body(("plain",)).get_content()
    open_link(answer)
    arrives(browser, url + "/my/tickets/CID-1000")
    screenshot(browser, "customer-ticket")
    browser.find_element(By.ID, "solved").click()
    assert poll(lambda: text_of(browser, "status") == "closed", what="the ticket closed")

    sign_in("bert@other.example")
    arrives(browser, url + "/my")
    browser.set_window_size(390, 844)  # a phone: the page fits its width, nothing to scroll across
    browser.refresh()
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    assert "CID-1000" not in browser.find_element(By.TAG_NAME, "main").text
    browser.get(url + "/my/tickets/CID-1000")  # a stranger types another ticket's number
    assert "Not found." in browser.find_element(By.TAG_NAME, "main").text
    nothing_ran(browser)
