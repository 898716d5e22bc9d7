"""Whether a mail really comes from its sender: agents by Authentication-Results or DKIM,
customers by what the trusted MTA's Authentication-Results say against them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

import authres

from mailgate.config import SecurityConfig
from mailgate.reading.mime.parts import raw_bytes
from mailgate.reading.parse import ParsedMail

if TYPE_CHECKING:  # imported where a signature is checked: most mail never needs it
    import dkim

DnsFunc = Callable[[bytes], bytes | None]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


@dataclass(frozen=True)
class _Result:
    """One method's outcome from an Authentication-Results header, reduced to what we check."""

    method: str  # "dkim", "spf", "dmarc"
    result: str  # "pass", "fail", ...
    domain: str  # header.d / header.i, smtp.mailfrom, header.from: domain part, lower-case


def verify_agent(
    mail: ParsedMail, raw: bytes, cfg: SecurityConfig, dns: DnsFunc | None = None
) -> Verdict:
    """Decide by `cfg.agent_verification` whether `mail` is authentically from its From domain.
    `dns` answers TXT look-ups for DKIM keys (name -> record); None uses the real DNS."""
    mode = cfg.agent_verification
    if mode == "none":
        return Verdict(True, "verification off")
    domain = _domain(mail.from_addr)
    if not domain:
        return Verdict(False, "no From address to verify")
    if mode == "dkim":
        return _verify_dkim(raw, domain, dns)
    return _verify_authres(raw, domain, cfg.trusted_authserv_id)


NOT_VERIFIED = "sender not verified"  # how a customer mail marked forged is noted


def verify_customer(mail: ParsedMail, raw: Callable[[], bytes], cfg: SecurityConfig) -> Verdict:
    """Whether the trusted MTA marks a customer's mail as forged. Only its word against the
    mail counts: without a header, a customer's mail is theirs as ever, and a header the
    sender wrote can only speak against the sender's own mail. `raw` is read only when the
    mail has an Authentication-Results header at all."""
    if not cfg.checks_customers() or "authentication-results" not in mail.headers:
        return Verdict(True, "not checked")
    headers = _trusted_headers(raw(), cfg.trusted_authserv_id)
    results = [result for parsed in headers for result in _results(parsed)]
    return _customer_verdict(results, _domain(mail.from_addr))


def _customer_verdict(results: list[_Result], domain: str) -> Verdict:
    """dmarc=fail for the From domain; without a DMARC verdict, spf=fail and no dkim=pass
    for it (a softfail is the domain's own "do not reject", and counts for nothing)."""
    dmarc = {r.result for r in results if r.method == "dmarc" and r.domain in (domain, "")}
    if "pass" in dmarc:
        return Verdict(True, f"dmarc=pass for {domain}")
    if "fail" in dmarc:
        return Verdict(False, f"dmarc=fail for {domain}")
    if any(r.result == "pass" and r.method != "dmarc" and _matches(r, domain) for r in results):
        return Verdict(True, f"a pass for {domain}")
    spf = next((r for r in results if r.method == "spf" and r.result == "fail"), None)
    if spf is not None:
        return Verdict(False, f"spf=fail for {spf.domain or domain} and no dkim=pass for {domain}")
    return Verdict(True, "no failure reported")


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(".").lower()


# --- Authentication-Results (RFC 8601) ------------------------------------------------------


# (authserv-id, [(method, result, {"ptype.property": value})])
_Parsed = tuple[str, list[tuple[str, str, dict[str, str]]]]

_MAX_HEADER = 16_384  # characters of one Authentication-Results value
_MAX_COMMENT_DEPTH = 32

# Where each method names the domain it vouches for, in order of preference.
_DOMAIN_PROPERTIES = {
    "dkim": ("header.d", "header.i"),
    "spf": ("smtp.mailfrom",),
    "dmarc": ("header.from",),
}


def _verify_authres(raw: bytes, domain: str, trusted: str) -> Verdict:
    headers = _trusted_headers(raw, trusted)
    if not headers:
        source = f"from {trusted}" if trusted else "header"
        return Verdict(False, f"no Authentication-Results {source}")
    results = [result for parsed in headers for result in _results(parsed)]
    for result in results:
        if result.result == "pass" and _matches(result, domain):
            return Verdict(True, f"{result.method}=pass for {result.domain}")
    seen = [f"{r.method}={r.result} for {r.domain or '(no domain)'}" for r in results]
    if not seen:
        return Verdict(False, f"no dkim, spf or dmarc result for {domain}")
    return Verdict(False, f"no pass for {domain}: " + ", ".join(dict.fromkeys(seen)))


def _matches(result: _Result, domain: str) -> bool:
    if result.method == "dkim":
        return _within(domain, result.domain)
    return result.domain == domain


def _within(domain: str, signer: str) -> bool:
    """A DKIM signature of a parent domain vouches for its subdomains (mail.example.com);
    a bare top-level domain vouches for nothing."""
    return domain == signer or ("." in signer and domain.endswith("." + signer))


def _trusted_headers(raw: bytes, trusted: str) -> list[_Parsed]:
    """The readable Authentication-Results headers that our own MTA added.

    Without a configured authserv-id only the topmost header counts: our MTA prepends its
    header, so anything below it came with the message and may be forged by the sender.
    With one, every header of that id counts (milters for DKIM, SPF and DMARC often add one
    each); RFC 8601 section 5 has the MTA remove such headers arriving from outside."""
    message = BytesHeaderParser(policy=compat32).parsebytes(raw)
    values = [
        _unfold(str(value))
        for name, value in message.raw_items()  # raw: get_all() would mangle 8-bit bytes
        if name.strip().lower() == "authentication-results"
    ]
    if not trusted:
        values = values[:1]
    parsed = [p for p in map(_parse, values) if p is not None]
    return [p for p in parsed if not trusted or p[0].lower() == trusted.lower()]


def _unfold(value: str) -> str:
    # The stdlib keeps 8-bit header bytes as surrogates; real UTF-8 (SMTPUTF8) is read back.
    text = raw_bytes(value).decode("utf-8", "replace")
    return re.sub(r"\r?\n[ \t]*", " ", text).strip()


def _results(parsed: _Parsed) -> Iterator[_Result]:
    for method, result, props in parsed[1]:
        names = _DOMAIN_PROPERTIES.get(method)
        if names is None:
            continue  # iprev, auth, arc, ...: say nothing about the From domain
        value = next((props[n] for n in names if props.get(n)), "")
        yield _Result(method, result, _domain(value))


def _parse(value: str) -> _Parsed | None:
    """The header's authserv-id and results, or None when it cannot be read at all.

    authres is strict: real headers with a trailing ";" or a quoted value it does not expect
    fail there, so those get a lenient reading of our own."""
    if len(value) > _MAX_HEADER:
        return None  # no MTA writes this much; only a sender's junk would
    if _comment_depth(value) > _MAX_COMMENT_DEPTH:
        return _parse_leniently(value)  # authres recurses per level and would overflow
    try:
        header = authres.AuthenticationResultsHeader.parse_value(value)
    except authres.AuthResError:
        return _parse_leniently(value)
    results = [
        (str(r.method).lower(), str(r.result).lower(), _props(r.properties)) for r in header.results
    ]
    return str(header.authserv_id), results


def _comment_depth(value: str) -> int:
    depth = deepest = 0
    for char in value:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth = max(depth - 1, 0)
    return deepest


def _without_comments(value: str) -> str:
    """`value` with its (nested) parenthesised comments blanked; quoted strings kept."""
    out, depth, quoted, escaped = [], 0, False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"' and not depth:
            quoted = not quoted
        elif char == "(" and not quoted:
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            char = " "
        out.append(" " if depth else char)
    return "".join(out)


def _props(properties: list[authres.core.AuthenticationResultProperty]) -> dict[str, str]:
    return {f"{p.type}.{p.name}".lower(): str(p.value) for p in properties}


_TOKEN = re.compile(r'([\w.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]+)')


def _parse_leniently(value: str) -> _Parsed | None:
    text = _without_comments(value)
    parts = [part.strip() for part in text.split(";")]
    if not parts or not parts[0]:
        return None
    results = []
    for part in parts[1:]:
        tokens = [(k.lower(), v.strip('"')) for k, v in _TOKEN.findall(part)]
        if tokens and "." not in tokens[0][0]:
            method, result = tokens[0]
            results.append((method, result.lower(), {k: v for k, v in tokens[1:] if "." in k}))
    return parts[0].split()[0], results


# --- DKIM (RFC 6376) --------------------------------------------------------------------------


_MAX_SIGNATURES = 5


def _verify_dkim(raw: bytes, domain: str, dns: DnsFunc | None) -> Verdict:
    # Here, not at the top: dkimpy loads a DNS library, a tenth of what a `mailgate` command
    # spends starting, and only mail that claims to be an agent's is checked.
    import dkim

    try:
        signer = dkim.DKIM(raw)
    except dkim.DKIMException as exc:
        return Verdict(False, f"message unreadable for DKIM: {exc}")
    count = sum(1 for name, _ in signer.headers if name.lower() == b"dkim-signature")
    if not count:
        return Verdict(False, "no DKIM signature")
    failures = []
    # Any valid signature of the From domain will do; each costs a DNS look-up, so a mail
    # stuffed with signatures gets only its first few checked.
    for idx in range(min(count, _MAX_SIGNATURES)):
        verdict = _check_signature(signer, idx, domain, dns)
        if verdict.ok:
            return verdict
        failures.append(verdict.reason)
    return Verdict(False, "; ".join(failures))


def _check_signature(signer: dkim.DKIM, idx: int, domain: str, dns: DnsFunc | None) -> Verdict:
    import dkim

    signer.domain = None  # the object is reused per signature; don't report the previous one
    problem = ""
    try:
        valid = signer.verify(idx=idx, dnsfunc=_dkim_dns(dns))
    except dkim.DKIMException as exc:  # bad body hash, missing key, malformed tags
        valid, problem = False, ": " + str(exc).split(" (", 1)[0]
    signed = (signer.domain or b"").decode("ascii", "replace").lower()
    if not valid:
        return Verdict(False, f"dkim=fail for {signed or '(no domain)'}{problem}")
    if not _within(domain, signed):
        return Verdict(False, f"dkim=pass for {signed}, not for {domain}")
    fields = signer.signature_fields or {}
    if b"from" not in re.split(rb"\s*:\s*", fields.get(b"h", b"").lower()):
        return Verdict(False, f"dkim signature of {signed} does not cover From")
    if b"l" in fields:
        # With l= anyone may append text below the signed part of the body.
        return Verdict(False, f"dkim signature of {signed} covers only part of the body")
    return Verdict(True, f"dkim=pass for {signed}")


def _dkim_dns(dns: DnsFunc | None) -> Callable[..., bytes | None]:
    import dkim

    if dns is None:
        return dkim.get_txt  # dkimpy's own resolver (dnspython)

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        return dns(name)

    return lookup
