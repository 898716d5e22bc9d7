"""Log lines: one event a line on stderr, key=value or JSON."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import sys
from datetime import UTC, datetime

from mailgate.config import LoggingConfig


class KeyValueFormatter(logging.Formatter):
    """`ts=… level=… logger=… event=…`: the message already is key=value pairs."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"ts={_timestamp(record)} level={record.levelname.lower()} "
            f"logger={record.name} {record.getMessage()}"
        )
        if record.exc_info:
            # repr keeps the traceback on the event's one line.
            line += f" exc={self.formatException(record.exc_info)!r}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line; the message's key=value pairs become fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        fields = _pairs(message)
        if fields is None:
            entry["message"] = message
        else:
            for key, value in fields.items():
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Lone surrogates (bytes that were not UTF-8, kept by surrogateescape) would make
        # the line invalid UTF-8, or a JSON escape strict readers refuse: written out instead.
        return _SURROGATE.sub(_escaped, json.dumps(entry, ensure_ascii=False))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    """A lone surrogate as the text `\\xf6` (an undecodable byte) or `\\udXXX`, JSON-escaped."""
    code = ord(match[0])
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\\\x{code - 0xDC00:02x}"
    return f"\\\\u{code:04x}"


# syslog(3) priorities, which journald reads from a `<N>` prefix on each line of stderr.
PRIORITIES = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournaldPriority(logging.Formatter):
    """Another formatter's line, after its `<N>` priority for journald."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        # A custom level between two standard ones takes the less severe one's priority.
        priority = next((p for level, p in PRIORITIES.items() if record.levelno >= level), 7)
        return f"<{priority}>{self.inner.format(record)}"


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pairs(message: str) -> dict[str, str] | None:
    """`event=x error='a b'` as fields; None when the message does not start with a pair.
    A word without `=` belongs to the value before it (`outcome=ticket CID-1003`)."""
    try:
        tokens = shlex.split(message)
    except ValueError:
        return None
    fields: dict[str, str] = {}
    key = ""
    for token in tokens:
        name, sep, value = token.partition("=")
        if sep and name:
            key = name
            fields[key] = value
        elif key:
            fields[key] += f" {token}"
        else:
            return None
    return fields or None


def configure_logging(cfg: LoggingConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = JsonFormatter() if cfg.format == "json" else KeyValueFormatter()
    if cfg.journald_priority == "on" or (
        cfg.journald_priority == "auto" and os.environ.get("JOURNAL_STREAM")
    ):
        formatter = JournaldPriority(formatter)
    handler.setFormatter(formatter)
    logging.basicConfig(level=cfg.level.upper(), handlers=[handler])
    # aiosmtpd logs every command at INFO, in its own format; ours says what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # Alembic says "Context impl SQLiteImpl" on every start, in its own format.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # APScheduler logs every run; failures are logged by mailgate.jobs.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
