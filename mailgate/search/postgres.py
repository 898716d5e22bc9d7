"""The index on PostgreSQL: one document of words per ticket, with a GIN index over it.

`search_doc` holds for each ticket the words of its subject, of each article's text, senders
and recipients, of its attachments' names and its references: each word once, without
positions, so the documents are smaller than the text (a reply quotes the mail before it).
Triggers keep a ticket's document in the transaction that writes its rows. Text is folded by
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
MAX_DOCUMENT = 1_000_000  # bytes of words a ticket's document takes (a tsvector's limit: 1 MiB)

# The functions of indexed expressions: PL/pgSQL, which the planner does not inline, so that
# it weighs their cost (computing an article's words costs about what reading a thousand
# rows does) and reads an index rather than computing them for every row.
_INDEXED = "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 5000 AS $$"
_ORGANISATION_WORDS = "mailgate_tagged('zqo', {r}.name)"

# What a ticket's rows add to its document, over a row `{r}`, in schema `{s}`.
# The rows' own words keep their positions (for a phrase); the document strips them.
_ARTICLE_WORDS = (
    "{s}.mailgate_article_tsv({r}.text, {r}.from_addr, {r}.from_name, {r}.to_addrs, {r}.cc_addrs)"
)
# In the document also the stems of the text's words by the German and English rules
# (PostgreSQL's `german` and `english` configurations): `Rechnungen` and `Rechnung` meet.
# mailgate_article_doc is strip(_ARTICLE_WORDS) and the stems of the text's words.
_ARTICLE_DOCUMENT = (
    "{s}.mailgate_article_doc({r}.text, {r}.from_addr, {r}.from_name, {r}.to_addrs, {r}.cc_addrs)"
)
_FILE_WORDS = "{s}.mailgate_tagged('zqa', {r}.filename)"
_REFERENCE_WORDS = "{s}.mailgate_tagged('zqr', {r}.reference)"
_TICKET_WORDS = (
    "{s}.mailgate_words({r}.subject) || {s}.mailgate_stems({s}.mailgate_words({r}.subject))"
)
LANGUAGES = ("german", "english")


def functions(schema: str, unaccent_schema: str) -> list[str]:
    """The folding functions (IMMUTABLE, as an index needs; each name schema-qualified so
    that a restore of a dump, which runs with an empty search_path, can use them)."""
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


def organisation_index() -> str:
    return (
        "CREATE INDEX search_organisation ON organisation USING gin ("
        f"({_ORGANISATION_WORDS.format(r='organisation')}))"
    )


def documents(schema: str) -> list[str]:
    """The document table, the function that writes a ticket's document from its rows, and
    the triggers that keep it: a new row adds its words; a changed or removed row has the
    ticket's document written again from what is there."""
    s = f'"{schema}"'

    def words(template: str, alias: str) -> str:
        return f"strip({template.format(s=s, r=alias)})"

    def positioned(template: str, alias: str) -> str:
        return template.format(s=s, r=alias)

    union = f"{s}.mailgate_union"
    written = f"(words, bytes) = (SELECT w, pg_column_size(w) FROM (SELECT {s}.mailgate_ticket_doc"
    refresh = f"UPDATE {s}.search_doc SET {written}(ticket_id) AS w) AS x) WHERE"

    def append(template: str, alias: str) -> str:
        # `bytes` counts what was added (each part's size, more than its words take): the
        # document's size without reading it, which cost a fifth of the index's time.
        more = "pg_column_size(more)"
        return (
            f"more := {words(template, alias)}; UPDATE {s}.search_doc SET words = CASE WHEN "
            f"bytes + {more} < {MAX_DOCUMENT} THEN words || more ELSE words END, "
            f"bytes = bytes + {more}"
        )

    # A tsvector holds at most 1 MB of words: a thread of pasted logs would reach it, and
    # the mail that did would fail to be stored. A document takes words until it is full:
    # kept by `bytes` as mail comes; when written anew from all its rows (mailgate_union),
    # counting a lexeme's bytes only when it may be near (400 words of at most 2047 bytes).
    size = "(SELECT coalesce(sum(octet_length(lexeme)), 0) FROM unnest({v}))"
    # Stems are taken of the words found (each once, folded), not of the text again: a
    # second and third reading of every mail made the documents four times as slow to write.
    listed = "array_to_string(tsvector_to_array(v), ' ')"
    stems = " || ".join(f"to_tsvector('{c}'::regconfig, {listed})" for c in LANGUAGES)
    statements = [
        "CREATE TABLE search_doc (ticket_id integer PRIMARY KEY, organisation_id integer, "
        "words tsvector NOT NULL, bytes integer NOT NULL)",
        f"CREATE FUNCTION {s}.mailgate_stems(v tsvector) RETURNS tsvector LANGUAGE sql "
        f"IMMUTABLE PARALLEL SAFE AS $$ SELECT strip({stems}) $$",
        # An article's words as mailgate_article_tsv has them, and the stems of its text's.
        f"CREATE FUNCTION {s}.mailgate_article_doc(body text, from_addr text, from_name text, "
        f"to_addrs text, cc_addrs text) RETURNS tsvector {_INDEXED} "
        f"DECLARE v tsvector := {s}.mailgate_words(left(body, {MAX_INDEXED})); "
        f"BEGIN RETURN strip(v || {s}.mailgate_words(from_addr || ' ' || from_name || ' ' "
        f"|| to_addrs || ' ' || cc_addrs) || {s}.mailgate_field('zqf', from_addr || ' ' "
        f"|| from_name) || {s}.mailgate_field('zqt', to_addrs || ' ' || cc_addrs)) "
        f"|| {s}.mailgate_stems(v); END $$",
        f"CREATE FUNCTION {s}.mailgate_add(doc tsvector, more tsvector) RETURNS tsvector "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN "
        f"length(doc) + length(more) < 400 OR {size.format(v='doc')} + {size.format(v='more')} "
        f"< {MAX_DOCUMENT} THEN doc || more ELSE doc END $$",
        f"CREATE AGGREGATE {s}.mailgate_union(tsvector) "
        f"(SFUNC = {s}.mailgate_add, STYPE = tsvector, INITCOND = '')",
        f"CREATE FUNCTION {s}.mailgate_ticket_doc(tid integer) RETURNS tsvector "
        "LANGUAGE sql STABLE AS $$ SELECT "
        f"coalesce((SELECT {words(_TICKET_WORDS, 't')} FROM {s}.ticket t WHERE t.id = tid), '') "
        f"|| coalesce((SELECT {union}({words(_ARTICLE_DOCUMENT, 'a')}) FROM {s}.article a "
        "WHERE a.ticket_id = tid), '') "
        f"|| coalesce((SELECT {union}({words(_FILE_WORDS, 'f')}) FROM {s}.attachment f "
        f"JOIN {s}.article a ON a.id = f.article_id WHERE a.ticket_id = tid), '') "
        f"|| coalesce((SELECT {union}({words(_REFERENCE_WORDS, 'r')}) "
        f"FROM {s}.ticketreference r WHERE r.ticket_id = tid), '') $$",
        # Whether a row of the ticket holds a phrase: its words in order (the rows' own
        # words, with positions, as the document has none).
        f"CREATE FUNCTION {s}.mailgate_phrase_in(tid integer, q tsquery) RETURNS boolean "
        "LANGUAGE sql STABLE AS $$ SELECT "
        f"EXISTS (SELECT 1 FROM {s}.ticket t WHERE t.id = tid "
        f"AND {s}.mailgate_words(t.subject) @@ q) "
        f"OR EXISTS (SELECT 1 FROM {s}.article a WHERE a.ticket_id = tid "
        f"AND {positioned(_ARTICLE_WORDS, 'a')} @@ q) "
        f"OR EXISTS (SELECT 1 FROM {s}.ticketreference r WHERE r.ticket_id = tid "
        f"AND {positioned(_REFERENCE_WORDS, 'r')} @@ q) "
        f"OR EXISTS (SELECT 1 FROM {s}.attachment f JOIN {s}.article a ON a.id = f.article_id "
        f"WHERE a.ticket_id = tid AND {positioned(_FILE_WORDS, 'f')} @@ q) $$",
    ]
    statements += _trigger(
        s,
        "ticket",
        "subject, organisation_id",
        f"more := {words(_TICKET_WORDS, 'NEW')}; "
        f"INSERT INTO {s}.search_doc (ticket_id, organisation_id, words, bytes) "
        "VALUES (NEW.id, NEW.organisation_id, more, pg_column_size(more));",
        f"UPDATE {s}.search_doc SET {written}(NEW.id) AS w) AS x), "
        "organisation_id = NEW.organisation_id WHERE ticket_id = NEW.id;",
        f"DELETE FROM {s}.search_doc WHERE ticket_id = OLD.id;",
    )
    statements += _trigger(
        s,
        "article",
        "text, from_addr, from_name, to_addrs, cc_addrs, ticket_id",
        f"{append(_ARTICLE_DOCUMENT, 'NEW')} WHERE ticket_id = NEW.ticket_id;",
        f"{refresh} ticket_id IN (OLD.ticket_id, NEW.ticket_id);",
        f"{refresh} ticket_id = OLD.ticket_id;",
    )
    statements += _trigger(
        s,
        "attachment",
        "filename, article_id",
        f"{append(_FILE_WORDS, 'NEW')} WHERE ticket_id = "
        f"(SELECT ticket_id FROM {s}.article WHERE id = NEW.article_id);",
        f"{refresh} ticket_id IN (SELECT ticket_id FROM {s}.article "
        "WHERE id IN (OLD.article_id, NEW.article_id));",
        f"{refresh} ticket_id = (SELECT ticket_id FROM {s}.article WHERE id = OLD.article_id);",
    )
    statements += _trigger(
        s,
        "ticketreference",
        "reference, ticket_id",
        f"{append(_REFERENCE_WORDS, 'NEW')} WHERE ticket_id = NEW.ticket_id;",
        f"{refresh} ticket_id IN (OLD.ticket_id, NEW.ticket_id);",
        f"{refresh} ticket_id = OLD.ticket_id;",
    )
    return statements


def _trigger(s: str, table: str, watched: str, insert: str, update: str, delete: str) -> list[str]:
    return [
        f"CREATE FUNCTION {s}.search_doc_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"DECLARE more tsvector; BEGIN IF TG_OP = 'INSERT' THEN {insert} "
        f"ELSIF TG_OP = 'UPDATE' THEN {update} "
        f"ELSE {delete} END IF; RETURN NULL; END $$",
        f"CREATE TRIGGER search_doc_{table} AFTER INSERT OR DELETE OR UPDATE OF {watched} "
        f"ON {table} FOR EACH ROW EXECUTE FUNCTION {s}.search_doc_{table}()",
    ]


DOCUMENT_TABLES = ("ticket", "article", "attachment", "ticketreference")


def fill(first: int, last: int) -> str:
    return (
        "INSERT INTO search_doc (ticket_id, organisation_id, words, bytes) "
        "SELECT id, organisation_id, w, pg_column_size(w) FROM (SELECT id, organisation_id, "
        "mailgate_ticket_doc(id) AS w FROM ticket "
        f"WHERE id >= {int(first)} AND id < {int(last)}) AS x"
    )


DOCUMENT_INDEXES = (
    "CREATE INDEX search_doc_words ON search_doc USING gin (words)",
    "CREATE INDEX search_doc_organisation ON search_doc (organisation_id)",
)


def drop_documents() -> list[str]:
    return [
        *(f"DROP TRIGGER IF EXISTS search_doc_{t} ON {t}" for t in DOCUMENT_TABLES),
        *(f"DROP FUNCTION IF EXISTS search_doc_{t}()" for t in DOCUMENT_TABLES),
        "DROP TABLE IF EXISTS search_doc",
        "DROP FUNCTION IF EXISTS mailgate_phrase_in(integer, tsquery)",
        "DROP FUNCTION IF EXISTS mailgate_ticket_doc(integer)",
        "DROP FUNCTION IF EXISTS mailgate_article_doc(text, text, text, text, text)",
        "DROP FUNCTION IF EXISTS mailgate_stems(tsvector)",
        "DROP AGGREGATE IF EXISTS mailgate_union(tsvector)",
        "DROP FUNCTION IF EXISTS mailgate_add(tsvector, tsvector)",
    ]


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
