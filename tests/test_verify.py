"""verify_agent: Authentication-Results variants, real DKIM signatures (only DNS is faked)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailgate.config import SecurityConfig
from mailgate.reading.parse import parse
from mailgate.reading.verify import Verdict, verify_agent, verify_customer

Dns = Callable[[bytes], bytes | None]
AR = SecurityConfig(
    agent_verification="authentication-results", trusted_authserv_id="mx.example.com"
)
AR_TOPMOST = SecurityConfig(agent_verification="authentication-results", trusted_authserv_id="")
DKIM = SecurityConfig(agent_verification="dkim")


def message(*headers: str, sender: str = "alice@example.com", body: str = "#close\r\n") -> bytes:
    lines = [*headers, f"From: Alice <{sender}>", "To: support@example.com"]
    lines += ["Subject: Re: [CID-1042] Printer", "Message-ID: <r1@example.com>", ""]
    return ("\r\n".join(lines) + "\r\n" + body).encode()


def check(raw: bytes, cfg: SecurityConfig = AR, dns: Dns | None = None) -> Verdict:
    return verify_agent(parse(raw), raw, cfg, dns)


# --- Authentication-Results -------------------------------------------------------------------

DKIM_PASS = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com header.s=s1"

AR_CASES = [
    ("dkim pass", [DKIM_PASS], "alice@example.com", True, "dkim=pass for example.com"),
    (
        "dkim fail",
        ["Authentication-Results: mx.example.com; dkim=fail header.d=example.com"],
        "alice@example.com",
        False,
        "dkim=fail for example.com",
    ),
    (
        "none",
        ["Authentication-Results: mx.example.com; none"],
        "alice@example.com",
        False,
        "no dkim, spf or dmarc result for example.com",
    ),
    (
        "forged pass below our fail",
        [
            "Authentication-Results: mx.example.com; dkim=fail header.d=example.com",
            "Received: from attacker.example.net by mx.example.com",
            "Authentication-Results: mx.attacker.example.net; dkim=pass header.d=example.com",
        ],
        "alice@example.com",
        False,
        "dkim=fail",
    ),
    (
        "wrong authserv-id",
        ["Authentication-Results: mx.evil.example; dkim=pass header.d=example.com"],
        "alice@example.com",
        False,
        "no Authentication-Results from mx.example.com",
    ),
    (
        "domain mismatch",
        ["Authentication-Results: mx.example.com; dkim=pass header.d=example.org"],
        "alice@example.com",
        False,
        "dkim=pass for example.org",
    ),
    ("subdomain of signer", [DKIM_PASS], "alice@eu.example.com", True, "dkim=pass"),
    (
        "look-alike is no subdomain",
        [DKIM_PASS],
        "alice@badexample.com",
        False,
        "no pass for badexample.com",
    ),
    (
        "dkim identity only",
        ["Authentication-Results: mx.example.com; dkim=pass header.i=@example.com"],
        "alice@example.com",
        True,
        "dkim=pass",
    ),
    (
        "spf only",
        ["Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=bounce@example.com"],
        "alice@example.com",
        True,
        "spf=pass for example.com",
    ),
    (
        "spf of another domain",
        ["Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=esp.example.net"],
        "alice@example.com",
        False,
        "spf=pass for esp.example.net",
    ),
    (
        "dmarc only",
        ["Authentication-Results: mx.example.com; dmarc=pass header.from=Example.COM"],
        "alice@example.com",
        True,
        "dmarc=pass for example.com",
    ),
    (
        "comments and several methods",
        [
            "Authentication-Results: mx.example.com (Postfix);\r\n"
            "\tdkim=fail (2048-bit key; bad signature) header.d=example.com header.s=s1;\r\n"
            "\tspf=softfail (mx.example.com: 192.0.2.7 is neither permitted nor denied)"
            " smtp.mailfrom=alice@example.com;\r\n"
            "\tarc=none; dmarc=pass (p=reject dis=none) header.from=example.com"
        ],
        "alice@example.com",
        True,
        "dmarc=pass for example.com",
    ),
    (
        "trailing semicolon and quoted value",
        [
            "Authentication-Results: mx.example.com; dkim=pass (1024-bit key)"
            ' header.d=example.com header.b="Ab+/c=";'
        ],
        "alice@example.com",
        True,
        "dkim=pass for example.com",
    ),
    (
        "one header per milter",
        [
            "Authentication-Results: mx.example.com; spf=fail smtp.mailfrom=example.com",
            "Authentication-Results: mx.example.com; dkim=pass header.d=example.com",
        ],
        "alice@example.com",
        True,
        "dkim=pass",
    ),
    ("missing header", [], "alice@example.com", False, "no Authentication-Results from"),
]


@pytest.mark.parametrize(
    ("headers", "sender", "ok", "reason"),
    [case[1:] for case in AR_CASES],
    ids=[case[0] for case in AR_CASES],
)
def test_authentication_results(headers: list[str], sender: str, ok: bool, reason: str) -> None:
    verdict = check(message(*headers, sender=sender))
    assert verdict.ok is ok
    assert reason in verdict.reason


def test_without_authserv_id_only_the_topmost_header_counts() -> None:
    ours = "Authentication-Results: mx.example.com; dkim=fail header.d=example.com"
    forged = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com"
    assert not check(message(ours, forged), AR_TOPMOST).ok
    assert check(message(forged, ours), AR_TOPMOST).ok


def test_without_authserv_id_and_no_header() -> None:
    verdict = check(message(), AR_TOPMOST)
    assert verdict == Verdict(False, "no Authentication-Results header")


def test_no_from_address() -> None:
    raw = f"{DKIM_PASS}\r\nSubject: x\r\n\r\nbody\r\n".encode()
    assert not check(raw).ok


def test_verification_off() -> None:
    cfg = SecurityConfig(agent_verification="none")
    assert check(message(), cfg) == Verdict(True, "verification off")


# --- DKIM -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> tuple[bytes, bytes]:
    """(private key in PEM, public key in DER) of a fresh RSA key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, der


@pytest.fixture
def dns(key: tuple[bytes, bytes]) -> Dns:
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(key[1])
    records = {b"s1._domainkey.example.com.": record}
    return lambda name: records.get(name if name.endswith(b".") else name + b".")


def signed(pem: bytes, domain: bytes = b"example.com", **kwargs: object) -> bytes:
    raw = message(sender="alice@example.com")
    return dkim.sign(raw, b"s1", domain, pem, **kwargs) + raw


def test_dkim_pass(key: tuple[bytes, bytes], dns: Dns) -> None:
    assert check(signed(key[0]), DKIM, dns) == Verdict(True, "dkim=pass for example.com")


def test_dkim_tampered_body_fails(key: tuple[bytes, bytes], dns: Dns) -> None:
    raw = signed(key[0]).replace(b"#close", b"#reopen")
    verdict = check(raw, DKIM, dns)
    assert not verdict.ok
    assert "dkim=fail for example.com" in verdict.reason


def test_dkim_unknown_key_fails(key: tuple[bytes, bytes]) -> None:
    verdict = check(signed(key[0]), DKIM, lambda name: None)
    assert not verdict.ok


def test_dkim_of_another_domain(key: tuple[bytes, bytes]) -> None:
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(key[1])
    verdict = check(signed(key[0], b"example.org"), DKIM, lambda name: record)
    assert verdict == Verdict(False, "dkim=pass for example.org, not for example.com")


def test_dkim_with_body_length_is_refused(key: tuple[bytes, bytes], dns: Dns) -> None:
    verdict = check(signed(key[0], length=True), DKIM, dns)
    assert not verdict.ok
    assert "part of the body" in verdict.reason


def test_dkim_without_signature(dns: Dns) -> None:
    assert check(message(), DKIM, dns) == Verdict(False, "no DKIM signature")


def test_deeply_nested_comment_is_read_without_recursion() -> None:
    nested = "(" * 3000 + ")" * 3000
    header = f"Authentication-Results: mx.example.com; {nested} dkim=pass header.d=example.com"
    assert check(message(header)).ok


def test_oversized_header_is_ignored() -> None:
    padding = "x" * 20_000
    header = f"Authentication-Results: mx.example.com; dkim=pass ({padding}) header.d=example.com"
    assert check(message(header)) == Verdict(False, "no Authentication-Results from mx.example.com")


def test_utf8_domain_in_raw_header() -> None:
    raw = message(
        "Authentication-Results: mx.example.com; dkim=pass header.d=exämple.de",
        sender="jörg@exämple.de",
    )
    assert check(raw) == Verdict(True, "dkim=pass for exämple.de")


# --- customers: only the trusted MTA's word against a mail counts -----------------------------

CUSTOMER_CASES = [
    ("dmarc fail", "dmarc=fail header.from=example.com", False, "dmarc=fail for example.com"),
    ("dmarc fail, no header.from", "dmarc=fail", False, "dmarc=fail for example.com"),
    ("dmarc pass beats spf fail", "spf=fail smtp.mailfrom=example.com; dmarc=pass", True, ""),
    (
        "spf fail, unsigned",
        "spf=fail smtp.mailfrom=example.com; dkim=none",
        False,
        "spf=fail for example.com and no dkim=pass for example.com",
    ),
    (
        "spf fail, signed by another domain",
        "spf=fail smtp.mailfrom=example.com; dkim=pass header.d=other.example",
        False,
        "spf=fail for example.com",
    ),
    (
        "spf fail, signed",
        "spf=fail smtp.mailfrom=example.com; dkim=pass header.d=example.com",
        True,
        "",
    ),
    ("spf softfail", "spf=softfail smtp.mailfrom=example.com; dkim=none", True, ""),
    ("dkim fail alone", "dkim=fail header.d=example.com", True, ""),
    ("dmarc of another domain", "dmarc=fail header.from=other.example", True, ""),
    ("nothing checked", "none", True, ""),
]


@pytest.mark.parametrize(
    ("results", "ok", "reason"),
    [case[1:] for case in CUSTOMER_CASES],
    ids=[case[0] for case in CUSTOMER_CASES],
)
def test_customer_verdict(results: str, ok: bool, reason: str) -> None:
    raw = message(f"Authentication-Results: mx.example.com; {results}", body="ok\r\n")
    verdict = verify_customer(parse(raw), lambda: raw, AR)
    assert verdict.ok is ok
    assert reason in verdict.reason


def test_customer_mail_without_the_header_is_not_read_again() -> None:
    raw = message(body="ok\r\n")

    def unread() -> bytes:
        raise AssertionError("the raw bytes were read")

    assert verify_customer(parse(raw), unread, AR).ok


def test_customer_verification_follows_agent_verification_by_default() -> None:
    assert AR.checks_customers()
    assert not DKIM.checks_customers()
    assert not SecurityConfig(agent_verification="none").checks_customers()
    off = SecurityConfig(customer_verification="none")
    assert not off.checks_customers()
    on = SecurityConfig(agent_verification="none", customer_verification="authentication-results")
    assert on.checks_customers()
