"""The default `[tickets] confirm_words` and `confirm_blockers`, per language.

Blockers are matched as whole words anywhere in what the customer wrote, in any language, so
they are chosen wide: a reply wrongly taken for a confirmation closes a case that is not
solved, while one wrongly not taken waits for staff or the automatic close. A word is left
out where it is an ordinary part of confirmations in another language (Dutch "en", Swedish
"en", Finnish "en" are "and" and "a"; Spanish "más" keeps its accent and is no "mas")."""

from __future__ import annotations

from collections.abc import Sequence

# A reply whose first words are one of these confirms (matched at the start, case folded).
CONFIRM_WORDS: dict[str, tuple[str, ...]] = {
    "de": ("ok", "okay", "bestätigt", "bestaetigt", "ja", "passt", "erledigt", "funktioniert",
           "alles klar", "geht wieder", "es geht wieder", "läuft wieder"),
    "en": ("confirm", "confirmed", "yes", "works", "it works", "resolved", "solved",
           "all good"),
    "fr": ("confirmé", "confirme", "je confirme", "c'est bon", "ça marche", "ca marche", "oui",
           "résolu", "ça fonctionne", "parfait", "c'est parfait"),
    "it": ("va bene", "confermo", "confermato", "risolto", "funziona", "sì", "perfetto"),
    "es": ("vale", "confirmado", "confirmo", "de acuerdo", "funciona", "sí", "resuelto",
           "perfecto"),
    "pt": ("confirmado", "confirmo", "funciona", "sim", "obrigado", "obrigada", "resolvido",
           "está bem", "tudo bem"),
    "nl": ("akkoord", "klopt", "opgelost", "werkt", "bevestigd", "prima", "in orde", "oké"),
    "da": ("bekræftet", "bekræfter", "fungerer", "virker", "i orden"),
    "sv": ("bekräftat", "bekräftar", "fungerar", "funkar", "okej"),
    "no": ("bekreftet", "bekrefter"),
    "fi": ("vahvistettu", "vahvistan", "toimii", "kyllä", "selvä", "okei"),
    "pl": ("potwierdzam", "potwierdzone", "działa", "tak", "w porządku"),
    "cs": ("potvrzuji", "potvrzuju", "funguje", "ano", "v pořádku"),
    "ru": ("подтверждаю", "подтверждено", "работает", "да", "всё работает", "все работает"),
    "tr": ("onaylıyorum", "onaylandı", "tamam", "çalışıyor", "evet", "oldu"),
}  # fmt: skip

# Negations, "but", "still" and words that report a fault: any of them, anywhere in what the
# customer wrote, keeps the reply from confirming ("OK, but it still jams").
CONFIRM_BLOCKERS: dict[str, tuple[str, ...]] = {
    "de": ("nicht", "kein", "keine", "keinen", "keinem", "keiner", "keines", "nie", "noch",
           "aber", "leider", "jedoch", "trotzdem", "weiterhin", "erneut", "fehler", "kaputt",
           "abgestürzt", "stürzt", "funktioniert nicht mehr"),
    "en": ("not", "no", "never", "still", "but", "however", "unfortunately", "cannot",
           "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't", "won't", "can't",
           "error", "broken", "crashed", "crashes", "fails", "failed", "failing"),
    "fr": ("pas", "ne", "non", "jamais", "aucun", "aucune", "mais", "toujours", "encore",
           "cependant", "malheureusement", "erreur", "panne"),
    "it": ("non", "mai", "ma", "però", "ancora", "di nuovo", "purtroppo", "tuttavia",
           "errore"),
    "es": ("no", "nunca", "ningún", "ninguna", "pero", "todavía", "todavia", "aún", "sigue",
           "otra vez", "lamentablemente", "desgraciadamente", "error"),
    "pt": ("não", "nao", "nem", "nunca", "nenhum", "nenhuma", "mas", "ainda", "de novo",
           "infelizmente", "erro"),
    "nl": ("niet", "geen", "nooit", "maar", "nog", "nog steeds", "helaas", "fout"),
    "da": ("ikke", "ingen", "aldrig", "men", "stadig", "desværre", "fejl"),
    "sv": ("inte", "ej", "ingen", "aldrig", "men", "fortfarande", "ännu", "tyvärr", "fel"),
    "no": ("ikke", "ingen", "aldri", "men", "fortsatt", "fremdeles", "dessverre", "feil"),
    "fi": ("ei", "eikä", "mutta", "vielä", "edelleen", "valitettavasti", "virhe"),
    "pl": ("nie", "ale", "nadal", "wciąż", "wciaz", "nigdy", "niestety", "błąd"),
    "cs": ("ne", "nefunguje", "nejde", "ale", "stále", "pořád", "ještě", "nikdy", "bohužel",
           "chyba"),
    "ru": ("не", "нет", "но", "ещё", "еще", "всё ещё", "все еще", "опять", "никогда",
           "к сожалению", "ошибка"),
    "tr": ("değil", "ama", "fakat", "ancak", "hala", "hâlâ", "yine", "çalışmıyor", "olmadı",
           "maalesef", "hata"),
}  # fmt: skip


def _flat(table: dict[str, tuple[str, ...]]) -> list[str]:
    """Every language's words, each once, in table order."""
    return list(dict.fromkeys(word for words in table.values() for word in words))


def default_confirm_words() -> list[str]:
    return _flat(CONFIRM_WORDS)


def default_confirm_blockers() -> list[str]:
    return _flat(CONFIRM_BLOCKERS)


def spoken(words: Sequence[str], language: str) -> list[str]:
    """The configured words a reader of `language` knows, for a mail that lists them: the
    first (the one the mail asks for), that language's own defaults and the desk's own
    additions (in no language's defaults), in the configured order; all when that is none."""
    own = set(CONFIRM_WORDS.get(language, ()))
    defaults = {word for language_words in CONFIRM_WORDS.values() for word in language_words}
    chosen = [w for i, w in enumerate(words) if i == 0 or w in own or w not in defaults]
    return chosen if len(chosen) > 1 else list(words)
