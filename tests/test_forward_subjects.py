"""A subject that says "forwarded" keeps the whole mail (what is forwarded is the point of
it); "VS:" says so in Danish and Norwegian, and "reply" in Finnish."""

from __future__ import annotations

from mailgate.flows.replies import written_text
from mailgate.reading.parse import parse
from tests.mails import make_mail

OWN = "Kiitos, lisenssi toimii nyt."
FINNISH_BLOCK = (
    "Lähettäjä: Support <support@example.com>\n"
    "Lähetetty: maanantai 2. marraskuuta 2026 10.15\n"
    "Vastaanottaja: Laura <laura@asiakas.example>\n"
    "Aihe: [CID-1060] Lisenssi\n\n"
    "Toimiiko lisenssi?\n"
)


def read(subject: str, body: str, headers: dict[str, str] | None = None) -> str:
    return written_text(parse(make_mail(subject=subject, body=body, headers=headers)))


def test_a_finnish_vs_is_a_reply() -> None:
    assert read("VS: [CID-1060] Lisenssi", f"{OWN}\n\n{FINNISH_BLOCK}") == OWN


def test_a_finnish_client_says_so_by_its_language_tag() -> None:
    body = f"{OWN}\n\nSupport <support@example.com> kirjoitti 2.11.2026 klo 10.15:\n> Toimiiko?\n"
    assert read("VS: [CID-1060] Lisenssi", body, {"Content-Language": "fi-FI"}) == OWN


def test_a_norwegian_vs_forwards_and_keeps_everything() -> None:
    body = (
        "Se under.\n\n"
        "Fra: Leverandør <salg@leverandor.example>\n"
        "Sendt: mandag 2. november 2026 10:15\n"
        "Til: Ola <ola@kunde.example>\n"
        "Emne: Lisens\n\n"
        "Lisensen er fornyet.\n"
    )
    assert read("VS: Lisens", body) == body.strip()


def test_fwd_and_wg_keep_everything() -> None:
    body = f"{OWN}\n\n{FINNISH_BLOCK}"
    assert read("WG: [CID-1060] Lisenssi", body) == body.strip()
