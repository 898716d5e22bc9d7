"""The index on PostgreSQL: GIN indexes over expressions of the rows themselves.

PostgreSQL keeps an expression index in step with its table in the writer's transaction,
so no trigger and no second copy of the text is needed: each table's index holds only its
words (no positions), smaller than the text. Text is folded by `mailgate_fold` (unaccent,
lower case, letters and digits only), as query.py folds the words typed. Addresses, names of
files and organisations and references are also indexed with a prefix of their field (`zqf`
from, `zqt` to, ...), so that `from:` finds only senders. A phrase is checked against the
row's text by PostgreSQL itself (the index finds the candidates)."""

from __future__ import annotations

from mailgate.search.query import MAX_INDEXED, Term

ARTICLE = 0
PREFIXES = {"from": "zqf", "to": "zqt", "org": "zqo", "ref": "zqr", "file": "zqa"}

# Each indexed expression, over a row `{r}` of its table; the query repeats it exactly, so
# that the planner finds the index.
_EXPRESSIONS = {
    "article": "mailgate_article_tsv({r}.text, {r}.from_addr, {r}.from_name, {r}.to_addrs, "
    "{r}.cc_addrs)",
    "ticket": "mailgate_words({r}.subject)",
    "ticketreference": "mailgate_tagged('zqr', {r}.reference)",
    "attachment": "mailgate_tagged('zqa', {r}.filename)",
    "organisation": "mailgate_tagged('zqo', {r}.name)",
}
SOURCES = tuple(_EXPRESSIONS)
# What a match in each counts towards a ticket's rank: the subject most, then a reference.
_WEIGHTS = {"ticket": 1.0, "ticketreference": 0.8, "article": 0.5, "attachment": 0.4}
_ORG_WEIGHT = 0.3
# The tables a field's term can match at all.
_FIELD_TABLES = {
    "from": ("article",),
    "to": ("article",),
    "ref": ("ticketreference",),
    "file": ("attachment",),
    "org": ("organisation",),
}


# The functions of the indexed expressions: PL/pgSQL, which the planner does not inline, so
# that it weighs their cost (computing an article's words costs about what reading a
# thousand rows does) and reads the index rather than computing them for every row.
_INDEXED = "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 5000 AS $$"


def setup(schema: str, unaccent_schema: str) -> list[str]:
    """The functions (IMMUTABLE, as an index needs; each name schema-qualified so that a
    restore of a dump, which runs with an empty search_path, can build the indexes)."""
    s = f'"{schema}"'
    fold = (
        f"regexp_replace(lower({unaccent_schema}.unaccent('{unaccent_schema}.unaccent'"
        "::regdictionary, coalesce(t, ''))), '[^[:alnum:]]+', ' ', 'g')"
    )
    return [
        f"CREATE FUNCTION {s}.mailgate_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE "
        f"PARALLEL SAFE AS $$ SELECT {fold} $$",
        f"CREATE FUNCTION {s}.mailgate_words(t text) RETURNS tsvector {_INDEXED} "
        f"BEGIN RETURN to_tsvector('simple'::regconfig, {s}.mailgate_fold(t)); END $$",
        f"CREATE FUNCTION {s}.mailgate_field(prefix text, t text) RETURNS tsvector "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT to_tsvector('simple'::regconfig, "
        f"regexp_replace({s}.mailgate_fold(t), '([^ ]+)', prefix || '\\1', 'g')) $$",
        f"CREATE FUNCTION {s}.mailgate_tagged(prefix text, t text) RETURNS tsvector {_INDEXED} "
        f"BEGIN RETURN {s}.mailgate_words(t) || {s}.mailgate_field(prefix, t); END $$",
        f"CREATE FUNCTION {s}.mailgate_article_tsv(body text, from_addr text, from_name text, "
        f"to_addrs text, cc_addrs text) RETURNS tsvector {_INDEXED} "
        f"BEGIN RETURN {s}.mailgate_words(left(body, {MAX_INDEXED})) "
        f"|| {s}.mailgate_words(from_addr || ' ' || from_name || ' ' || to_addrs || ' ' "
        "|| cc_addrs) "
        f"|| {s}.mailgate_field('zqf', from_addr || ' ' || from_name) "
        f"|| {s}.mailgate_field('zqt', to_addrs || ' ' || cc_addrs); END $$",
    ]


def index(table: str) -> str:
    """The statement that builds a table's index (and indexes every row already there)."""
    return (
        f"CREATE INDEX search_{table} ON {table} USING gin ("
        f"({_EXPRESSIONS[table].format(r=table)}))"
    )


def drop() -> list[str]:
    functions = (
        "mailgate_article_tsv(text, text, text, text, text)",
        "mailgate_tagged(text, text)",
        "mailgate_field(text, text)",
        "mailgate_words(text)",
        "mailgate_fold(text)",
    )
    return [f"DROP INDEX IF EXISTS search_{table}" for table in SOURCES] + [
        f"DROP FUNCTION IF EXISTS {f}" for f in functions
    ]


def match(term: Term) -> str:
    """The term as a tsquery: each spelling of it its words as quoted lexemes (letters and
    digits only, so nothing typed is tsquery syntax), prefixed by its field if it has one.
    Only a "quoted phrase" asks for the words in order (<->): the index holds no positions,
    so PostgreSQL checks a phrase against each candidate row's text, at a cost per row. The
    words of one typed word (`ORDER-4711`, `alice@example.org`) need only all be there."""
    prefix = PREFIXES.get(term.field or "", "")
    spellings = dict.fromkeys(v.replace("ß", "ss") for v in term.variants())
    phrases = []
    for spelling in spellings:
        words = [f"'{prefix}{word}'" for word in spelling.split()]
        if words and term.prefix:
            words[-1] += ":*"
        if words:
            phrases.append("(" + (" <-> " if term.quoted else " & ").join(words) + ")")
    return " | ".join(phrases)


def _matches(table: str, alias: str, param: str) -> str:
    return f"{_EXPRESSIONS[table].format(r=alias)} @@ to_tsquery('simple', :{param})"


def term_docs(index: int, key: int, field: str | None = None, param: str = "") -> str:
    """One term's matching rows: (ticket, row, weight, term number). A row is an article
    (`id << 3`, for the snippet), a subject, a reference, an attachment or an organisation
    (its tickets)."""
    param = param or f"m{index}"
    tables = _FIELD_TABLES.get(field or "", SOURCES)
    parts = []
    if "article" in tables:
        parts.append(
            f"SELECT a.ticket_id AS tid, a.id * 8 AS doc, {_WEIGHTS['article']} AS s, {key} AS k "
            f"FROM article a WHERE {_matches('article', 'a', param)}"
        )
    if "ticket" in tables:
        parts.append(
            f"SELECT t.id AS tid, 1 AS doc, {_WEIGHTS['ticket']} AS s, {key} AS k FROM ticket t "
            f"WHERE {_matches('ticket', 't', param)}"
        )
    if "ticketreference" in tables:
        parts.append(
            f"SELECT r.ticket_id AS tid, 3 AS doc, {_WEIGHTS['ticketreference']} AS s, {key} AS k "
            "FROM ticketreference r "
            f"WHERE {_matches('ticketreference', 'r', param)}"
        )
    if "attachment" in tables:
        parts.append(
            f"SELECT a.ticket_id AS tid, 2 AS doc, {_WEIGHTS['attachment']} AS s, {key} AS k "
            "FROM attachment f "
            f"JOIN article a ON a.id = f.article_id WHERE {_matches('attachment', 'f', param)}"
        )
    if "organisation" in tables:
        parts.append(
            f"SELECT t.id AS tid, 4 AS doc, {_ORG_WEIGHT} AS s, {key} AS k FROM ticket t "
            "WHERE t.organisation_id IN "
            f"(SELECT o.id FROM organisation o WHERE {_matches('organisation', 'o', param)})"
        )
    return " UNION ALL ".join(parts)


def excluded(index: int, field: str | None = None) -> str:
    """The tickets an excluded term matches."""
    return f"SELECT tid FROM ({term_docs(index, 0, field, f'x{index}')}) AS x"


def article_of(doc: int) -> int | None:
    return doc >> 3 if doc and doc % 8 == ARTICLE else None


RECENCY = "(1.0 / (1.0 + EXTRACT(EPOCH FROM (:now - t.last_action_at)) / 31536000.0))"
