"""The index on PostgreSQL: one document of words per ticket, with a GIN index over it.

`search_doc` holds for each ticket the words of its subject, of each article's text, senders
and recipients, of its attachments' names and its references: each word once, without
positions, so the documents are smaller than the text (a reply quotes the mail before it).
Triggers keep a ticket's document in the transaction that writes its rows (the table, its
functions and triggers are postgres_documents.py's). Text is folded by
`mailgate_fold` (unaccent, lower case, letters and digits only), as query.py folds the words
typed. Addresses, file names and references are in it twice: as words, and with a prefix of
their field (`zqf` from, `zqt` to, `zqr` ref, `zqa` file), so that `from:` finds only senders.
The row keeps the ticket's organisation by id: a search looks organisations up by name in
their own small index first, then takes their tickets' rows (an index of its own), and a
renamed organisation rewrites no ticket.

One document per ticket makes a search one look-up in one index whatever its words, and the
newest tickets that match can be read in order of their number, stopping at the first
thousand: a word in every fourth mail costs what a rare one does. The document has no
positions, so for a "quoted phrase" it finds the tickets with all its words and PostgreSQL
checks the order against the text of those tickets' rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from mailgate.search.query import MAX_INDEXED, Term

PREFIXES = {"from": "zqf", "to": "zqt", "org": "zqo", "ref": "zqr", "file": "zqa"}
MOST_ORGANISATIONS = 2000  # a word in more organisations' names than this finds their first

# The functions of indexed expressions: PL/pgSQL, which the planner does not inline, so that
# it weighs their cost (computing an article's words costs about what reading a thousand
# rows does) and reads an index rather than computing them for every row.
_INDEXED = "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 5000 AS $$"
_ORGANISATION_WORDS = "mailgate_tagged('zqo', {r}.name)"


_MARKS = "\n\r\t.,;:!?-/()@'\"<>=&_+*#"  # replaced before the regular expression runs


def _literal(mark: str) -> str:
    escaped = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "'": "\\'"}.get(mark, mark)
    return f"E'{escaped}'"


def functions(schema: str, unaccent_schema: str) -> list[str]:
    """The folding functions (IMMUTABLE, as an index needs; each name schema-qualified so
    that a restore of a dump, which runs with an empty search_path, can use them). Made
    anew (CREATE OR REPLACE) by revision 0019 too: what they return is the same."""
    s = f'"{schema}"'
    # A regular expression's cost is in its matches: spaces are left as they are, and the
    # commonest marks are each replaced by a space first (a fast pass of its own), so the
    # expression matches only what is left, a dash or quotation mark of another script.
    # A mail of 3 kB: 0.14 ms; by the expression alone 0.24 ms, 0.32 ms matching spaces too.
    unaccented = (
        f"{unaccent_schema}.unaccent('{unaccent_schema}.unaccent'::regdictionary, coalesce(t, ''))"
    )
    folded = f"lower({unaccented})"
    for mark in _MARKS:
        folded = f"replace({folded}, {_literal(mark)}, ' ')"
    fold = f"regexp_replace({folded}, '[^[:alnum:] ]+', ' ', 'g')"
    new = "CREATE OR REPLACE FUNCTION"
    return [
        f"{new} {s}.mailgate_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE "
        f"PARALLEL SAFE AS $$ SELECT {fold} $$",
        f"{new} {s}.mailgate_words(t text) RETURNS tsvector {_INDEXED} "
        f"BEGIN RETURN to_tsvector('simple'::regconfig, {s}.mailgate_fold(t)); END $$",
        f"{new} {s}.mailgate_field(prefix text, t text) RETURNS tsvector "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT to_tsvector('simple'::regconfig, "
        f"regexp_replace({s}.mailgate_fold(t), '([^ ]+)', prefix || '\\1', 'g')) $$",
        f"{new} {s}.mailgate_tagged(prefix text, t text) RETURNS tsvector {_INDEXED} "
        f"BEGIN RETURN {s}.mailgate_words(t) || {s}.mailgate_field(prefix, t); END $$",
        f"{new} {s}.mailgate_article_tsv(body text, from_addr text, from_name text, "
        f"to_addrs text, cc_addrs text) RETURNS tsvector {_INDEXED} "
        f"BEGIN RETURN {s}.mailgate_words(left(body, {MAX_INDEXED})) "
        f"|| {s}.mailgate_words(from_addr || ' ' || from_name || ' ' || to_addrs || ' ' "
        "|| cc_addrs) "
        f"|| {s}.mailgate_field('zqf', from_addr || ' ' || from_name) "
        f"|| {s}.mailgate_field('zqt', to_addrs || ' ' || cc_addrs); END $$",
    ]


def organisation_index() -> str:
    return (
        "CREATE INDEX search_organisation ON organisation USING gin ("
        f"({_ORGANISATION_WORDS.format(r='organisation')}))"
    )


def drop_functions() -> list[str]:
    functions = (
        "mailgate_article_tsv(text, text, text, text, text)",
        "mailgate_tagged(text, text)",
        "mailgate_field(text, text)",
        "mailgate_words(text)",
        "mailgate_fold(text)",
    )
    return ["DROP INDEX IF EXISTS search_organisation"] + [
        f"DROP FUNCTION IF EXISTS {f}" for f in functions
    ]


# The index of the first version of revision 0016: an expression index on each table.
FIRST_INDEXES = ("article", "ticket", "ticketreference", "attachment")


# Queries ------------------------------------------------------------------------------------


def match(term: Term, field_prefix: bool = True, positions: bool = False) -> str:
    """The term as a tsquery: each spelling of it its words as quoted lexemes (letters and
    digits only, so nothing typed is tsquery syntax), prefixed by its field if it has one.
    A document has no positions: its words need only all be there (&); `positions` asks for
    a "quoted phrase"'s words in order (<->), to check against a row's own words."""
    prefix = PREFIXES.get(term.field or "", "") if field_prefix else ""
    spellings = dict.fromkeys(v.replace("ß", "ss") for v in term.variants())
    joiner = " <-> " if positions and term.quoted else " & "
    phrases = []
    for spelling in spellings:
        words = [f"'{prefix}{word}'" for word in spelling.split()]
        if words and term.prefix:
            words[-1] += ":*"
        if words:
            phrases.append("(" + joiner.join(words) + ")")
    return " | ".join(phrases)


def organisations(connection: Connection, term: Term) -> list[int]:
    """The organisations whose name a term that may name one (any word, org:) matches."""
    if term.field not in (None, "org"):
        return []
    return list(
        connection.execute(
            text(
                f"SELECT o.id FROM organisation o WHERE {_ORGANISATION_WORDS.format(r='o')} "
                "@@ to_tsquery('simple', :m) ORDER BY o.id LIMIT :most"
            ),
            {"m": match(term, positions=True), "most": MOST_ORGANISATIONS},
        ).scalars()
    )


def stems(connection: Connection, term: Term) -> list[str]:
    """The stems of a plain word (no field, phrase, prefix or part), by the rules whose stems
    the documents hold; none for other terms or a word that is its own stem."""
    if term.field or term.quoted or term.prefix or term.part or len(term.words) != 1:
        return []
    spellings = [v.replace("ß", "ss") for v in term.variants()]
    found = connection.execute(
        text("SELECT lexeme FROM unnest(mailgate_stems(to_tsvector('simple', :t)))"),
        {"t": " ".join(spellings)},
    ).scalars()
    return [stem for stem in found if stem not in spellings]


def document_match(term: Term, stems: Sequence[str] = ()) -> str:
    """The tsquery a ticket's document must match for the term: its words or a stem of its
    word."""
    alternatives = [match(term)] + ["'" + stem.replace("'", "''") + "'" for stem in stems]
    return " | ".join(alternatives)


def term_condition(
    term: Term, organisations: list[int], stems: Sequence[str], name: str, params: dict[str, Any]
) -> str:
    """A term that may name organisations: its words in the document, or the ticket of an
    organisation it names (org: only the latter). Parameters :{name}w, :{name}o."""
    found = []
    if term.field != "org":
        params[f"{name}w"] = document_match(term, stems)
        found.append(f"d.words @@ to_tsquery('simple', :{name}w)")
    if organisations:
        params[f"{name}o"] = [int(i) for i in organisations]
        found.append(f"d.organisation_id = ANY(:{name}o)")
    return "(" + " OR ".join(found) + ")" if found else "FALSE"


def needs_order(term: Term) -> bool:
    return term.quoted and len(term.words) > 1 and term.field != "org"


def in_order(param: str, organisations: str = "") -> str:
    """The ticket `t` has a row in which the phrase's words stand in this order (or is of one
    of the organisations :{organisations} that the phrase names)."""
    found = f"mailgate_phrase_in(t.id, to_tsquery('simple', :{param}))"
    if not organisations:
        return found
    return f"({found} OR t.organisation_id = ANY(:{organisations}))"


def candidates(conditions: list[str], where: list[str], in_order: list[str]) -> str:
    """The newest tickets whose document meets the terms' `conditions` (over `d`), with the
    ticket `t`'s filters `where` and the phrases `in_order`.

    A phrase is checked after the document's look-up has put its tickets in order (the
    subquery with OFFSET 0 is kept apart): else the planner, which cannot know how often
    common words come together, checked it for every one of 32,000 tickets and sorted
    them after."""
    # The ticket's row only where a filter asks for it: joining it to each of 32,000
    # documents was a third of a phrase's time.
    source = "search_doc d JOIN ticket t ON t.id = d.ticket_id" if where else "search_doc d"
    found = (
        f"SELECT d.ticket_id AS id, d.organisation_id FROM {source} "
        f"WHERE {' AND '.join(conditions + where)} ORDER BY d.ticket_id DESC"
    )
    if not in_order:
        return f"{found} LIMIT :cap"
    return f"SELECT t.id FROM ({found} OFFSET 0) AS t WHERE {' AND '.join(in_order)} LIMIT :cap"


def ranked(
    subject_terms: list[str], article_terms: list[str], ids: list[int], with_docs: bool
) -> tuple[str, dict[str, Any]]:
    """The candidates by score: each term in the subject counts, then recency; with an
    article for the snippet, one that an article's term (a word, from:, to:) matches."""
    params: dict[str, Any] = {}
    bonus = []
    for index, term in enumerate(subject_terms):
        params[f"s{index}"] = term
        bonus.append(
            f"CASE WHEN mailgate_words(t.subject) @@ to_tsquery('simple', :s{index}) "
            "THEN 1.0 ELSE 0.0 END"
        )
    score = f"(1.0 + {' + '.join(bonus) or '0.0'}) * {RECENCY}"
    inner = (
        f"SELECT t.id, t.number, t.subject, t.status, t.last_action_at, {score} AS score "
        f"FROM ticket t WHERE t.id IN ({', '.join(str(int(i)) for i in ids)}) "
        "ORDER BY score DESC, t.last_action_at DESC, t.id DESC LIMIT :limit"
    )
    if not with_docs or not article_terms:
        return f"SELECT r.*, 0 AS doc FROM ({inner}) AS r", params
    params["any"] = " | ".join(f"({t})" for t in article_terms)
    doc = (
        # The newest article that has a word as typed, else the newest (where the word was
        # found by its stem: the snippet finds `Rechnungen` for `rechnung` by its start).
        "(SELECT a.id FROM article a WHERE a.ticket_id = r.id ORDER BY mailgate_article_tsv("
        "a.text, a.from_addr, a.from_name, a.to_addrs, a.cc_addrs) @@ to_tsquery('simple', :any) "
        "DESC, a.id DESC LIMIT 1)"
    )
    return f"SELECT r.*, coalesce({doc}, 0) AS doc FROM ({inner}) AS r", params


def article_of(doc: int) -> int | None:
    return doc or None


RECENCY = "(1.0 / (1.0 + EXTRACT(EPOCH FROM (:now - t.last_action_at)) / 31536000.0))"


# Parts of words (`*schein`): pg_trgm's indexes over the short texts --------------------------

# table -> (its indexed column, the tickets of the rows that hold a pattern :{param})
PARTS = {
    "ticket": ("subject", "SELECT p.id FROM ticket p WHERE p.subject ILIKE :{param}"),
    "attachment": (
        "filename",
        "SELECT a.ticket_id FROM attachment p JOIN article a ON a.id = p.article_id "
        "WHERE p.filename ILIKE :{param}",
    ),
    "ticketreference": (
        "reference",
        "SELECT p.ticket_id FROM ticketreference p WHERE p.reference ILIKE :{param}",
    ),
}
_PART_TABLES = {None: tuple(PARTS), "file": ("attachment",), "ref": ("ticketreference",)}


def part_indexes() -> list[str]:
    # pg_trgm is a trusted extension, as unaccent: the database's owner may create it.
    return ["CREATE EXTENSION IF NOT EXISTS pg_trgm"] + [
        f"CREATE INDEX search_part_{table} ON {table} USING gin ({column} gin_trgm_ops)"
        for table, (column, _) in PARTS.items()
    ]


def drop_part_indexes() -> list[str]:
    return [f"DROP INDEX IF EXISTS search_part_{table}" for table in PARTS]


def part_pattern(term: Term) -> str:
    """An ILIKE pattern for anywhere in the text: what was typed, its wildcards escaped."""
    escaped = term.words[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def has_part(param: str, term: Term) -> str:
    found = " UNION ALL ".join(
        PARTS[table][1].format(param=param) for table in _PART_TABLES[term.field]
    )
    return f"t.id IN ({found})"
