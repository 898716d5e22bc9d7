"""Checks across keys that types alone cannot make: addresses, limits, schedules."""

from __future__ import annotations

import re

from mailgate.config.sections import (
    Config,
    ConfigError,
    CustomersConfig,
    LoopsConfig,
    OutboundConfig,
    SmtpConfig,
    WebConfig,
)


def validate(cfg: Config) -> None:
    host, _, port = cfg.smtp.listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"smtp.listen: {cfg.smtp.listen!r} is not HOST:PORT")
    host, _, port = cfg.http.listen.rpartition(":")
    if cfg.http.listen and (not host or not port.isdigit()):
        raise ConfigError(f"http.listen: {cfg.http.listen!r} is not HOST:PORT (or empty)")
    _validate_web(cfg.web)
    if cfg.outbound.transport == "smtp" and not cfg.outbound.host:
        raise ConfigError('outbound.host: required when outbound.transport = "smtp"')
    if cfg.tickets.start < 1:
        raise ConfigError("tickets.start: must be at least 1")
    _validate_limits(cfg.smtp, cfg.outbound)
    _validate_loops(cfg.loops)
    _validate_customers(cfg.customers)
    _validate_schedules(cfg)
    if cfg.processing.workers < 0:
        raise ConfigError("processing.workers: must be 0 (in the daemon's process) or more")
    if cfg.processing.batch_size < 1:
        raise ConfigError("processing.batch_size: must be at least 1")
    if cfg.processing.time_limit_seconds < 1:
        raise ConfigError("processing.time_limit_seconds: must be at least 1")
    for i, pattern in enumerate(cfg.tickets.reference_patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            where = f"tickets.reference_patterns[{i}]"
            raise ConfigError(f"{where}: not a regular expression: {exc}") from None
    for box in cfg.imap:
        if box.poll_interval <= 0 or box.takeover_interval <= 0:
            raise ConfigError(f"imap.{box.name}: poll_interval and takeover_interval must be > 0")
        # Moved into the folder it is read from, a message would come back under a new UID.
        if box.oversize_folder in ("", box.folder):
            raise ConfigError(
                f"imap.{box.name}.oversize_folder: must be set and differ from folder"
            )
    names = [m.name for m in cfg.imap]
    if len(set(names)) != len(names):
        raise ConfigError("imap.name: every [[imap]] mailbox needs its own name")
    _validate_oauth(cfg)


def _validate_web(web: WebConfig) -> None:
    host, _, port = web.listen.rpartition(":")
    if web.listen and (not host or not port.isdigit()):
        raise ConfigError(f"web.listen: {web.listen!r} is not HOST:PORT (or empty)")
    if web.base_url and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", web.base_url):
        raise ConfigError(f"web.base_url: {web.base_url!r} is not an http:// or https:// address")
    if min(web.link_minutes, web.session_days, web.customer_link_days) < 1:
        raise ConfigError(
            "web.link_minutes, web.session_days and web.customer_link_days: must be at least 1"
        )


def _validate_oauth(cfg: Config) -> None:
    names = [a.name for a in cfg.oauth]
    for i, account in enumerate(cfg.oauth):
        where = f"oauth[{i}]" if not account.name else f"oauth.{account.name}"
        if not account.name or names.count(account.name) > 1:
            raise ConfigError(f"{where}.name: every [[oauth]] account needs a name of its own")
        if not account.client_id:
            raise ConfigError(f"{where}.client_id: required (the application's ID)")
        if account.provider == "generic" and not account.token_url:
            raise ConfigError(f'{where}.token_url: required for provider = "generic"')
        if account.refresh_margin_seconds < 0:
            raise ConfigError(f"{where}.refresh_margin_seconds: must be 0 or more")
    users = [(f"imap.{box.name}", box.oauth, box.username) for box in cfg.imap]
    users.append(("outbound", cfg.outbound.oauth, cfg.outbound.username))
    for where, name, username in users:
        if name and name not in names:
            known = ", ".join(names) or "none is configured"
            raise ConfigError(f"{where}.oauth: {name!r} is no [[oauth]] account name ({known})")
        if name and not username:
            raise ConfigError(f"{where}.username: required with oauth (the mailbox address)")


def _validate_limits(smtp: SmtpConfig, out: OutboundConfig) -> None:
    if smtp.max_recipients < 1:
        raise ConfigError("smtp.max_recipients: must be at least 1")
    # RFC 5322 allows 998 octets a line; a lower limit would refuse valid mail.
    if smtp.max_line_length < 998:
        raise ConfigError("smtp.max_line_length: must be at least 998")
    for key in ("session_timeout", "idle_timeout", "busy_idle_timeout"):
        if getattr(smtp, key) <= 0:
            raise ConfigError(f"smtp.{key}: must be more than 0 seconds")
    if smtp.shutdown_grace_seconds < 0:
        raise ConfigError("smtp.shutdown_grace_seconds: must be 0 (no grace) or more")
    for key in ("max_sessions", "max_sessions_per_client"):
        if getattr(smtp, key) < 1:
            raise ConfigError(f"smtp.{key}: must be at least 1")
    if (smtp.tls_key_file or smtp.require_tls) and not smtp.tls_cert_file:
        raise ConfigError("smtp.tls_cert_file: required for tls_key_file and require_tls")
    if out.max_age_hours <= 0:
        raise ConfigError("outbound.max_age_hours: must be more than 0")
    if out.connections < 1:
        raise ConfigError("outbound.connections: must be at least 1")
    if out.lease_seconds < 1:
        raise ConfigError("outbound.lease_seconds: must be at least 1 second")
    if out.max_message_size < 65536:
        raise ConfigError("outbound.max_message_size: must be at least 65536 bytes")


def _validate_loops(loops: LoopsConfig) -> None:
    for key in (
        "max_auto_mails_per_hour",
        "max_auto_mails_per_hour_total",
        "breaker_auto_replies",
        "breaker_window_minutes",
    ):
        if getattr(loops, key) < 1:
            raise ConfigError(f"loops.{key}: must be at least 1")


def _validate_customers(customers: CustomersConfig) -> None:
    if not customers.unassigned_organisation.strip():
        raise ConfigError("customers.unassigned_organisation: must not be empty")
    for i, domain in enumerate(customers.public_domains):
        if "@" in domain or "." not in domain.strip(". ") or " " in domain.strip():
            where = f"customers.public_domains[{i}]"
            raise ConfigError(f"{where}: {domain!r} is not a mail domain (e.g. mailbox.org)")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|bd)\s*$")


def parse_duration(text: str) -> tuple[int, str]:
    """ "2h" -> (2, "h"); units m, h, d (clock time) and bd (business days)."""
    match = _DURATION.match(text.lower())
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h, 1d or 2bd")
    return int(match.group(1)), match.group(2)


def _validate_schedules(cfg: Config) -> None:
    from datetime import date
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(cfg.tickets.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"tickets.timezone: {cfg.tickets.timezone!r} is not a time zone"
        ) from None
    for priority, target in cfg.sla.first_response.items():
        if priority not in ("A", "B", "C"):
            raise ConfigError(f"sla.first_response.{priority}: priorities are A, B and C")
        try:
            parse_duration(target)
        except ValueError as exc:
            raise ConfigError(f"sla.first_response.{priority}: {exc}") from None
    for i, day in enumerate(cfg.sla.business_days):
        if day.lower() not in WEEKDAYS:
            raise ConfigError(
                f"sla.business_days[{i}]: {day!r} is not one of {', '.join(WEEKDAYS)}"
            )
    for i, day in enumerate(cfg.sla.holidays):
        try:
            date.fromisoformat(day)
        except ValueError:
            raise ConfigError(f"sla.holidays[{i}]: {day!r} is not a date (YYYY-MM-DD)") from None
    for key in ("confirmation_days", "auto_close_days"):
        if getattr(cfg.reminders, key) < 0:
            raise ConfigError(f"reminders.{key}: must be 0 (never) or more")
    for key in ("raw_mail_days", "sent_mail_days", "outbox_days"):
        if getattr(cfg.retention, key) < 0:
            raise ConfigError(f"retention.{key}: must be 0 (keep forever) or more")
    schedules = {
        "digest.schedule": cfg.digest.schedule,
        "retention.schedule": cfg.retention.schedule,
    }
    for key, schedule in schedules.items():
        if not schedule:
            continue
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(schedule)
        except ValueError as exc:
            raise ConfigError(f"{key}: {schedule!r}: {exc}") from None
    if not cfg.retention.schedule:
        raise ConfigError("retention.schedule: must be set (days of 0 turn retention off)")
