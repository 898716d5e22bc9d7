"""Greetings and sign-offs per language: the one table that both the confirmation reader
(mailgate.confirm) and the agent's closing block (mailgate.signatures) read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Closings:
    """How mail in one language opens and ends. `sign_offs` end what someone says ("Best
    regards"); `thanks` often stand where a sign-off does ("Thanks, Jana") but also start
    what someone goes on to say, so only the closing block reads them as a sign-off."""

    openings: tuple[str, ...]
    sign_offs: tuple[str, ...]
    thanks: tuple[str, ...]


# Lower case (matching folds case), except that a Turkish capital İ folds to "i" with a
# combining dot, so such words are given in both spellings.
TABLE: dict[str, Closings] = {
    "de": Closings(
        openings=(
            "hallo", "liebe", "lieber", "sehr geehrte", "sehr geehrter", "guten tag",
            "guten morgen", "moin", "servus",
        ),
        sign_offs=(
            "mit freundlichen grüßen", "mit freundlichen grüssen", "mit freundlichem gruß",
            "mit freundlichem gruss", "freundliche grüße", "freundliche grüsse", "viele grüße",
            "viele grüsse", "beste grüße", "beste grüsse", "liebe grüße", "liebe grüsse",
            "herzliche grüße", "herzliche grüsse", "schöne grüße", "schöne grüsse",
            "danke und gruß", "danke und grüße", "gruß", "gruss", "grüße", "grüsse", "mfg",
            "vg", "lg",
        ),
        thanks=(
            "vielen dank", "vielen dank im voraus", "danke", "danke schön", "dankeschön",
        ),
    ),
    "en": Closings(
        openings=("hi", "hey", "hello", "dear", "good morning", "good afternoon"),
        sign_offs=(
            "best regards", "kind regards", "warm regards", "kindest regards", "regards",
            "with best regards", "with kind regards", "best wishes", "cheers", "sincerely",
            "yours sincerely", "yours faithfully",
        ),
        thanks=(
            "best", "thanks", "thanks again", "thanks a lot", "thanks in advance", "thank you",
            "many thanks",
        ),
    ),
    "fr": Closings(
        openings=("bonjour", "bonsoir", "salut", "madame", "monsieur", "cher", "chère"),
        sign_offs=(
            "cordialement", "bien cordialement", "bien à vous", "salutations",
            "meilleures salutations", "sincères salutations", "amicalement", "bonne journée",
            "bonne soirée",
        ),
        thanks=("merci", "merci beaucoup", "merci d'avance", "merci encore"),
    ),
    "it": Closings(
        openings=("buongiorno", "buonasera", "ciao", "salve", "gentile", "caro", "cara"),
        sign_offs=(
            "cordiali saluti", "distinti saluti", "saluti", "cordialmente", "un saluto",
            "buona giornata", "a presto",
        ),
        thanks=("grazie", "grazie mille", "grazie ancora"),
    ),
    "es": Closings(
        openings=("hola", "buenos días", "buenos dias", "buenas tardes", "estimado", "estimada"),
        sign_offs=(
            "saludos", "un saludo", "saludos cordiales", "un cordial saludo", "atentamente",
            "cordialmente", "muchos saludos",
        ),
        thanks=("gracias", "muchas gracias"),
    ),
    "pt": Closings(
        openings=("olá", "ola", "bom dia", "boa tarde", "prezado", "prezada", "caro", "cara"),
        sign_offs=(
            "com os melhores cumprimentos", "melhores cumprimentos", "cumprimentos",
            "atenciosamente", "cordialmente", "saudações", "um abraço", "abraço",
        ),
        thanks=("obrigado", "obrigada", "muito obrigado", "muito obrigada"),
    ),
    "nl": Closings(
        openings=("hallo", "hoi", "beste", "geachte", "goedemorgen", "goedemiddag"),
        sign_offs=(
            "met vriendelijke groet", "met vriendelijke groeten", "vriendelijke groet",
            "vriendelijke groeten", "met hartelijke groet", "hartelijke groet", "met groet",
            "groeten", "groet", "mvg",
        ),
        thanks=("bedankt", "alvast bedankt", "dank je", "dank u"),
    ),
    "da": Closings(
        openings=("hej", "kære", "goddag", "godmorgen"),
        sign_offs=(
            "med venlig hilsen", "venlig hilsen", "de bedste hilsner", "bedste hilsner",
            "kærlig hilsen", "hilsen", "mvh", "vh",
        ),
        thanks=("tak", "mange tak", "på forhånd tak"),
    ),
    "sv": Closings(
        openings=("hej", "hejsan", "hallå", "bästa", "god morgon"),
        sign_offs=(
            "med vänliga hälsningar", "vänliga hälsningar", "med vänlig hälsning",
            "vänlig hälsning", "bästa hälsningar", "hälsningar", "hälsning", "mvh",
        ),
        thanks=("tack", "tack så mycket", "tack på förhand"),
    ),
    "no": Closings(
        openings=("hei", "hallo", "kjære", "god morgen"),
        sign_offs=(
            "med vennlig hilsen", "vennlig hilsen", "beste hilsen", "hilsen", "mvh", "vh",
        ),
        thanks=("takk", "tusen takk", "på forhånd takk"),
    ),
    "fi": Closings(
        openings=("hei", "moi", "terve", "hyvä", "hyvää päivää", "huomenta"),
        sign_offs=("ystävällisin terveisin", "parhain terveisin", "terveisin"),
        thanks=("kiitos", "kiitos paljon"),
    ),
    "pl": Closings(
        openings=(
            "dzień dobry", "cześć", "witam", "szanowny", "szanowna", "szanowni", "szanowny panie",
            "szanowna pani",
        ),
        sign_offs=(
            "z poważaniem", "z wyrazami szacunku", "pozdrawiam", "pozdrawiam serdecznie",
            "serdecznie pozdrawiam", "pozdrowienia", "łączę pozdrowienia",
        ),
        thanks=("dziękuję", "dzięki"),
    ),
    "cs": Closings(
        openings=("dobrý den", "ahoj", "vážený", "vážená", "vážení", "zdravím"),
        sign_offs=("s pozdravem", "s přátelským pozdravem", "se srdečným pozdravem", "zdraví"),
        thanks=("děkuji", "díky"),
    ),
    "ru": Closings(
        openings=(
            "здравствуйте", "добрый день", "доброе утро", "привет", "уважаемый", "уважаемая",
        ),
        sign_offs=(
            "с уважением", "с наилучшими пожеланиями", "всего доброго", "всего хорошего",
        ),
        thanks=("спасибо", "благодарю"),
    ),
    "tr": Closings(
        openings=(
            "merhaba", "selam", "sayın", "günaydın", "iyi günler", "İyi günler",
        ),
        sign_offs=(
            "saygılarımla", "saygılar", "iyi çalışmalar", "İyi çalışmalar", "iyi günler",
            "İyi günler", "selamlar", "sevgiler",
        ),
        thanks=("teşekkürler", "teşekkür ederim"),
    ),
}  # fmt: skip


def _all(kind: str) -> tuple[str, ...]:
    """Every language's phrases of one kind, each once, in table order."""
    phrases = (p for closings in TABLE.values() for p in getattr(closings, kind))
    return tuple(dict.fromkeys(phrases))


OPENINGS = _all("openings")
SIGN_OFFS = _all("sign_offs")
THANKS = _all("thanks")
