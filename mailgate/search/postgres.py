"""The index on PostgreSQL: a table of tsvectors with a GIN index, kept by triggers.

Each row is one source of text (an article, a ticket's subject and references, an attachment
name, an organisation name), doc_id `source id << 3 | kind`. Text is folded by
`mailgate_fold` (unaccent, lower case, letters and digits only), as query.py folds the words
typed. Addresses, names of files and organisations and references are also written with a
prefix of their field (`zqf` from, `zqt` to, ...), so that `from:` finds only senders."""

from __future__ import annotations

from mailgate.search.query import Term

ARTICLE, TICKET, ATTACHMENT, ORGANISATION = 0, 1, 2, 4
PREFIXES = {"from": "zqf", "to": "zqt", "org": "zqo", "ref": "zqr", "file": "zqa"}
# ts_rank weights D, C, B, A: D the field-prefixed words, C addresses, names and references,
# B an article's text, A the subject.
WEIGHTS = "'{0.1, 0.4, 0.6, 1.0}'"

SETUP = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    # unaccent() is STABLE, not IMMUTABLE: fine in triggers, which is where it is used.
    """CREATE FUNCTION mailgate_fold(t text) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT regexp_replace(lower(unaccent(coalesce(t, ''))), '[^[:alnum:]]+', ' ', 'g')
    $$""",
    """CREATE FUNCTION mailgate_words(t text, weight "char") RETURNS tsvector
        LANGUAGE sql STABLE AS $$
        SELECT setweight(to_tsvector('simple', mailgate_fold(t)), weight)
    $$""",
    """CREATE FUNCTION mailgate_field(prefix text, t text) RETURNS tsvector
        LANGUAGE sql STABLE AS $$
        SELECT to_tsvector('simple',
            regexp_replace(mailgate_fold(t), '([^ ]+)', prefix || '\\1', 'g'))
    $$""",
    """CREATE TABLE search_doc (
        doc_id bigint PRIMARY KEY,
        ticket_id integer,
        org_id integer,
        tsv tsvector NOT NULL
    )""",
    "CREATE INDEX ix_search_doc_tsv ON search_doc USING gin (tsv)",
    "CREATE INDEX ix_search_doc_ticket ON search_doc (ticket_id)",
]

# (doc_id, ticket_id, org_id, tsv) as SQL over a row `{r}` of each source table.
_ARTICLE = (
    "{r}.id * 8",
    "{r}.ticket_id",
    "NULL",
    "mailgate_words({r}.text, 'B')"
    " || mailgate_words({r}.from_addr || ' ' || {r}.from_name || ' ' || {r}.to_addrs"
    " || ' ' || {r}.cc_addrs, 'C')"
    " || mailgate_field('zqf', {r}.from_addr || ' ' || {r}.from_name)"
    " || mailgate_field('zqt', {r}.to_addrs || ' ' || {r}.cc_addrs)",
)
_REFS = "(SELECT string_agg(reference, ' ') FROM ticketreference WHERE ticket_id = {r}.id)"
_TICKET = (
    "{r}.id * 8 + 1",
    "{r}.id",
    "NULL",
    f"mailgate_words({{r}}.subject, 'A') || mailgate_words({_REFS}, 'C')"
    f" || mailgate_field('zqr', {_REFS})",
)
_ATTACHMENT = (
    "{r}.id * 8 + 2",
    "(SELECT ticket_id FROM article WHERE id = {r}.article_id)",
    "NULL",
    "mailgate_words({r}.filename, 'C') || mailgate_field('zqa', {r}.filename)",
)
_ORGANISATION = (
    "{r}.id * 8 + 4",
    "NULL",
    "{r}.id",
    "mailgate_words({r}.name, 'C') || mailgate_field('zqo', {r}.name)",
)
SOURCES = {
    "article": (_ARTICLE, "text, from_addr, from_name, to_addrs, cc_addrs, ticket_id"),
    "ticket": (_TICKET, "subject"),
    "attachment": (_ATTACHMENT, "filename"),
    "organisation": (_ORGANISATION, "name"),
}


_ON_CONFLICT = (
    "ON CONFLICT (doc_id) DO UPDATE SET ticket_id = excluded.ticket_id, "
    "org_id = excluded.org_id, tsv = excluded.tsv"
)


def _upsert(row: tuple[str, str, str, str], alias: str) -> str:
    values = ", ".join(part.format(r=alias) for part in row)
    return (
        f"INSERT INTO search_doc (doc_id, ticket_id, org_id, tsv) VALUES ({values}) " + _ON_CONFLICT
    )


def _select(row: tuple[str, str, str, str], table: str, where: str) -> str:
    values = ", ".join(part.format(r="r") for part in row)
    return (
        f"INSERT INTO search_doc (doc_id, ticket_id, org_id, tsv) SELECT {values} "
        f"FROM {table} r WHERE {where}"
    )


def triggers() -> list[str]:
    """Functions and triggers that keep the index in step, in the writer's transaction."""
    statements = []
    for table, (row, watched) in SOURCES.items():
        statements += [
            f"""CREATE FUNCTION search_{table}_write() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    DELETE FROM search_doc WHERE doc_id = {row[0].format(r="OLD")};
                    RETURN OLD;
                END IF;
                {_upsert(row, "NEW")};
                RETURN NEW;
            END $$""",
            f"CREATE TRIGGER search_{table}_ai AFTER INSERT OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION search_{table}_write()",
            f"CREATE TRIGGER search_{table}_au AFTER UPDATE OF {watched} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION search_{table}_write()",
        ]
    # A reference rewrites its ticket's row, which holds the ticket's references.
    statements += [
        f"""CREATE FUNCTION search_reference_write() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            ticket_of_row integer := CASE TG_OP WHEN 'DELETE' THEN OLD.ticket_id
                                     ELSE NEW.ticket_id END;
        BEGIN
            {_select(_TICKET, "ticket", "r.id = ticket_of_row")} {_ON_CONFLICT};
            RETURN NULL;
        END $$""",
        "CREATE TRIGGER search_ticketreference_aiud AFTER INSERT OR UPDATE OR DELETE "
        "ON ticketreference FOR EACH ROW EXECUTE FUNCTION search_reference_write()",
    ]
    return statements


def drop() -> list[str]:
    statements = [
        f"DROP TRIGGER IF EXISTS search_{t}_{w} ON {t}" for t in SOURCES for w in ("ai", "au")
    ]
    statements += [
        "DROP TRIGGER IF EXISTS search_ticketreference_aiud ON ticketreference",
        "DROP TABLE IF EXISTS search_doc",
    ]
    functions = [f"search_{t}_write()" for t in SOURCES] + [
        "search_reference_write()",
        "mailgate_field(text, text)",
        'mailgate_words(text, "char")',
        "mailgate_fold(text)",
    ]
    return statements + [f"DROP FUNCTION IF EXISTS {f}" for f in functions]


def backfill(table: str) -> str:
    """Index the rows of `table` with ids in [:first, :last)."""
    return _select(SOURCES[table][0], table, "r.id >= :first AND r.id < :last")


def id_range(table: str) -> str:
    return f"SELECT min(id), max(id) FROM {table}"


def match(term: Term) -> str:
    """The term as a tsquery: each spelling of it a phrase of quoted lexemes (letters and
    digits only, so nothing typed is tsquery syntax), prefixed by its field if it has one."""
    prefix = PREFIXES.get(term.field or "", "")
    spellings = dict.fromkeys(v.replace("ß", "ss") for v in term.variants())
    phrases = []
    for spelling in spellings:
        words = [f"'{prefix}{word}'" for word in spelling.split()]
        if term.prefix:
            words[-1] += ":*"
        phrases.append("(" + " <-> ".join(words) + ")")
    return " | ".join(phrases)


def term_docs(index: int, key: int) -> str:
    return (
        f"SELECT d.ticket_id AS tid, d.doc_id AS doc, ts_rank({WEIGHTS}, d.tsv, q) AS s, "
        f"{key} AS k FROM search_doc d, to_tsquery('simple', :m{index}) q "
        "WHERE d.tsv @@ q AND d.ticket_id IS NOT NULL "
        f"UNION ALL SELECT t.id, 0, 0.1, {key} FROM ticket t WHERE t.organisation_id IN "
        f"(SELECT org_id FROM search_doc WHERE tsv @@ to_tsquery('simple', :m{index}) "
        "AND org_id IS NOT NULL)"
    )


def excluded(index: int) -> str:
    return (
        "SELECT ticket_id FROM search_doc "
        f"WHERE tsv @@ to_tsquery('simple', :x{index}) AND ticket_id IS NOT NULL"
    )


def article_of(doc: int) -> int | None:
    return doc >> 3 if doc and doc & 7 == ARTICLE else None


RECENCY = "(1.0 / (1.0 + EXTRACT(EPOCH FROM (:now - t.last_action_at)) / 31536000.0))"
