"""Log lines: one event a line on stderr, key=value or JSON."""

from __future__ import annotations

import json
import logging
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
        return json.dumps(entry, ensure_ascii=False)


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
    handler.setFormatter(JsonFormatter() if cfg.format == "json" else KeyValueFormatter())
    logging.basicConfig(level=cfg.level.upper(), handlers=[handler])
    # aiosmtpd logs every command at INFO, in its own format; ours says what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # Alembic says "Context impl SQLiteImpl" on every start, in its own format.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # APScheduler logs every run; failures are logged by mailgate.jobs.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
