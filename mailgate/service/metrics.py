"""Prometheus metrics per daemon and the small HTTP server for /metrics and /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, text
from sqlmodel import select

from mailgate.store.database import Store
from mailgate.store.models import QUARANTINED, Intake, Outbox

log = logging.getLogger("mailgate.http")

HEALTH_TIMEOUT = 2.0  # /healthz: a database that does not answer SELECT 1 by then is down

# From a fast SMTP round trip to a slow relay or a busy database.
PROCESSING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
REQUEST_TIMEOUT = 5.0  # a client that does not send its request line in time is dropped
MAX_HEADER_LINES = 100
# Every counter would also export a `<name>_created` timestamp series: for
# `mailgate_tickets_created` that made `mailgate_tickets_created_created`, and it doubles the
# series for nothing Prometheus needs (the text format has no use for it).
disable_created_metrics()
# How a delivery round's outbox statuses read as delivery results.
DELIVERY_RESULTS = {"sent": "sent", "queued": "deferred", "failed": "failed"}


class _OutboxCollector(Collector):
    """Outbox rows by status, read from the database when scraped, so every instance agrees."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mailgate_outbox_messages", "Outbox rows by status.", labels=["status"]
        )
        for status, number in sorted(self.counts().items()):
            family.add_metric([status], number)
        yield family


class _QuarantineCollector(Collector):
    """Quarantined messages, counted in the database when scraped (any instance may add one)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "mailgate_quarantine_messages", "Stored messages in quarantine.", value=self.count()
        )


def _version() -> str:
    try:
        return version("mailgate")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class Metrics:
    """One daemon's metrics in a registry of its own (several daemons may share a process)."""

    def __init__(
        self,
        outbox_counts: Callable[[], Mapping[str, int]] | None = None,
        quarantined: Callable[[], int] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        Info("mailgate_build", "The running mailgate.", registry=self.registry).info(
            {"version": _version()}
        )
        self.messages = Counter(
            "mailgate_messages",
            "Stored messages brought to an outcome, by intake source and outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.tickets_created = Counter(
            "mailgate_tickets_created", "Tickets opened.", registry=self.registry
        )
        self.processing = Histogram(
            "mailgate_processing_seconds",
            "From a message stored (or found waiting) to its outcome.",
            buckets=PROCESSING_BUCKETS,
            registry=self.registry,
        )
        self.imap_lag = Gauge(
            "mailgate_imap_lag_seconds",
            "Age of the oldest message waiting in an IMAP mailbox at the last poll.",
            ["mailbox"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "mailgate_deliveries",
            "Outbox delivery attempts by result: sent, deferred (retried later) or failed.",
            ["result"],
            registry=self.registry,
        )
        for result in DELIVERY_RESULTS.values():  # 0 from the start, so rate() sees the first
            self.deliveries.labels(result=result)
        self.smtp_refusals = Counter(
            "mailgate_smtp_refusals",
            "SMTP and LMTP replies of 4xx or 5xx, by reply code.",
            ["code"],
            registry=self.registry,
        )
        self.job_success = Gauge(
            "mailgate_job_last_success_timestamp_seconds",
            "When each scheduled job last ran to its end without an error (Unix time).",
            ["job"],
            registry=self.registry,
        )
        if outbox_counts is not None:
            self.registry.register(_OutboxCollector(outbox_counts))
        if quarantined is not None:
            self.registry.register(_QuarantineCollector(quarantined))

    def outcome(self, source: str, status: str, created: bool, seconds: float | None) -> None:
        self.messages.labels(source=source, outcome=status).inc()
        if created:
            self.tickets_created.inc()
        if seconds is not None:
            self.processing.observe(seconds)

    def delivered(self, counts: Mapping[str, int]) -> None:
        """A delivery round's counts of new outbox statuses (see outbox.deliver_due)."""
        for status, number in counts.items():
            if number and status in DELIVERY_RESULTS:
                self.deliveries.labels(result=DELIVERY_RESULTS[status]).inc(number)

    def refused(self, reply: str) -> None:
        """An SMTP reply line sent: counted when it refuses (4xx, 5xx), once a reply (its
        last line: the others are `550-...`)."""
        code = reply[:3]
        if code.isdigit() and code[0] in "45" and reply[3:4] != "-":
            self.smtp_refusals.labels(code=code).inc()

    def job_succeeded(self, job: str) -> None:
        self.job_success.labels(job=job).set_to_current_time()

    def set_imap_lag(self, mailbox: str, seconds: float) -> None:
        """For the IMAP intake: how far behind a mailbox is."""
        self.imap_lag.labels(mailbox=mailbox).set(seconds)

    def render(self) -> bytes:
        """The exposition text; may query the database, so call it off the event loop."""
        return generate_latest(self.registry)


Response = tuple[int, str, bytes]


class HttpEndpoints:
    """GET /metrics and GET /healthz; 404 for any other path, 405 for other methods."""

    def __init__(self, metrics: Metrics, healthy: Callable[[], Awaitable[bool]]) -> None:
        self.metrics = metrics
        self.healthy = healthy

    async def respond(self, method: str, path: str) -> Response:
        if path not in ("/metrics", "/healthz"):
            return 404, "text/plain; charset=utf-8", b"not found\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        if path == "/metrics":
            body = await asyncio.to_thread(self.metrics.render)
            return 200, CONTENT_TYPE_LATEST, body
        if await self.healthy():
            return 200, "text/plain; charset=utf-8", b"ok\n"
        return 503, "text/plain; charset=utf-8", b"unhealthy\n"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            status, kind, body = (
                (400, "text/plain; charset=utf-8", b"bad request\n")
                if request is None
                else await self.respond(*request)
            )
            head_only = request is not None and request[0] == "HEAD"
            writer.write(_head(status, kind, len(body)) + (b"" if head_only else body))
            await writer.drain()
        except ConnectionError:
            pass  # the client went away; nothing to answer
        except Exception:  # one bad request must not end the server
            log.exception("event=http_failed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """Method and path from the request line (headers are read and ignored); None for a
    request that is malformed, too long or too slow."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            parts = (await reader.readline()).decode("latin-1").split()
            for _ in range(MAX_HEADER_LINES):
                if (await reader.readline()).strip() == b"":
                    break
    except (TimeoutError, ValueError, asyncio.IncompleteReadError):  # ValueError: line too long
        return None
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    return parts[0], parts[1].split("?", 1)[0]


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def _head(status: int, kind: str, length: int) -> bytes:
    reason = REASONS.get(status, "Service Unavailable")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


async def start_http(listen: str, endpoints: HttpEndpoints) -> asyncio.Server:
    """Listen on HOST:PORT on the running loop; OSError when the address cannot be bound."""
    host, _, port = listen.rpartition(":")
    return await asyncio.start_server(endpoints.handle, host.strip("[]"), int(port))


def outbox_counts(store: Store) -> dict[str, int]:
    """Outbox rows by status, for the metrics scrape."""
    with store.session() as session:
        query = select(Outbox.status, func.count()).group_by(Outbox.status)
        return {status: int(number) for status, number in session.exec(query)}


def quarantined_count(store: Store) -> int:
    """Stored messages in quarantine, for the metrics scrape."""
    with store.session() as session:
        query = select(func.count()).select_from(Intake).where(Intake.status == QUARANTINED)
        return int(session.exec(query).one())


def database_answers(store: Store) -> None:
    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


async def database_healthy(store: Store) -> bool:
    """The database answers SELECT 1 within HEALTH_TIMEOUT."""
    try:
        await asyncio.wait_for(asyncio.to_thread(database_answers, store), HEALTH_TIMEOUT)
    except Exception:  # any failure to answer is "unhealthy", whatever its kind
        return False
    return True


async def serve_http(listen: str, endpoints: HttpEndpoints) -> asyncio.Server | None:
    """/metrics and /healthz on `listen` (none when empty). A port that cannot be bound is
    logged, and intake goes on without them: mail matters more than metrics."""
    if not listen:
        return None
    try:
        return await start_http(listen, endpoints)
    except OSError as exc:
        # Logged as the daemon always logged it: operators may filter on that name.
        logging.getLogger("mailgate.daemon").error(
            "event=http_listen_failed listen=%s error=%r", listen, str(exc)
        )
        return None
