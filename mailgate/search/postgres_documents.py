"""PostgreSQL's documents of words, one row of `search_doc` per ticket: the table, the
functions that compute what a ticket's rows add to it, and the triggers that keep it in the
writer's transaction (revision 0017; 0019 replaces the functions and triggers,
0025 the stems).

Writing a mail's words is part of storing it, so what it costs is ingest's. Two choices
keep it small:
- The document has no positions, so an article's words are its folded text split at the
  spaces and made a tsvector as they are (array_to_tsvector): PostgreSQL's text parser,
  which finds each word's kind and position, took about half of the time.
- A new ticket's document is written once, when its transaction commits (a deferred
  constraint trigger), from the ticket and every row the transaction gave it. Written as
  each row came, a new ticket with an attachment was written three times, and every write
  of the row puts all its words into the GIN index again. A search in that same transaction
  first has the waiting documents written (`SET CONSTRAINTS`, PENDING below)."""

from __future__ import annotations

from mailgate.search.query import MAX_INDEXED

MAX_DOCUMENT = 1_000_000  # bytes of words a ticket's document takes (a tsvector's limit: 1 MiB)
LANGUAGES = ("german", "english")
PENDING = "SET CONSTRAINTS search_doc_new_ticket IMMEDIATE"  # write the waiting documents
_FUNCTION = "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$"

# What a ticket's rows add to its document, over a row `{r}`, in schema `{s}`.
# The rows' own words keep their positions (for a phrase); the document strips them.
_ARTICLE_WORDS = (
    "{s}.mailgate_article_tsv({r}.text, {r}.from_addr, {r}.from_name, {r}.to_addrs, {r}.cc_addrs)"
)
# In the document also the stems of the text's words by the German and English rules
# (PostgreSQL's `german` and `english` configurations): `Rechnungen` and `Rechnung` meet.
_ARTICLE_DOCUMENT = (
    "{s}.mailgate_article_doc({r}.text, {r}.from_addr, {r}.from_name, {r}.to_addrs, {r}.cc_addrs)"
)
_FILE_WORDS = "strip({s}.mailgate_tagged('zqa', {r}.filename))"
_REFERENCE_WORDS = "strip({s}.mailgate_tagged('zqr', {r}.reference))"
_TICKET_DOCUMENT = "{s}.mailgate_subject_doc({r}.subject)"

TABLE = (
    "CREATE TABLE search_doc (ticket_id integer PRIMARY KEY, organisation_id integer, "
    "words tsvector NOT NULL, bytes integer NOT NULL)"
)
# A document's words hardly compress (each is there once): PostgreSQL tried to compress
# every document over 2 kB, failed, and moved it to the TOAST table, on each write. Kept in
# the row up to 8 kB and never compressed, a document costs one write of its row.
STORAGE = (
    "ALTER TABLE search_doc SET (toast_tuple_target = 8160)",
    "ALTER TABLE search_doc ALTER COLUMN words SET STORAGE EXTERNAL",
)


def functions(schema: str) -> list[str]:
    """The functions of the documents, each made anew (CREATE OR REPLACE): revisions 0019
    and 0025 run them again over 0017's."""
    s = f'"{schema}"'
    union = f"{s}.mailgate_union"
    # A tsvector holds at most 1 MB of words: a thread of pasted logs would reach it, and
    # the mail that did would fail to be stored. A document takes words until it is full,
    # counted by the size of what is added (a little more than its words' bytes): kept in
    # `bytes` as mail comes, summed when written anew from all its rows (mailgate_union).
    # Stems are taken of the words found (each once, folded), not of the text again: a
    # second and third reading of every mail made the documents four times as slow to write.
    # A word that begins with a digit (a number, a date, `0x80070005`, `3er`) is no word
    # of a language to either configuration: it is its own stem. Such words sort first in a
    # tsvector and are a third of a support mail's words, so they are cut off the front of
    # the list (an anchored expression, which reads no further) before it is parsed twice.
    listed = (
        "regexp_replace(array_to_string(tsvector_to_array(v), ' '), "
        "'^[0-9][^ ]*( [0-9][^ ]*)*', '')"
    )
    stems = " || ".join(f"to_tsvector('{c}'::regconfig, listed)" for c in LANGUAGES)
    people = "from_addr || ' ' || from_name"
    return [
        # The words of a text as mailgate_words finds them, without positions. A word over
        # 2047 bytes (a run of base64) is more than a tsvector takes: the parser leaves it out.
        f"CREATE OR REPLACE FUNCTION {s}.mailgate_lexemes(t text) RETURNS tsvector {_FUNCTION} "
        f"DECLARE found text[] := array_remove(string_to_array({s}.mailgate_fold(t), ' '), ''); "
        "BEGIN RETURN array_to_tsvector(found); EXCEPTION WHEN program_limit_exceeded THEN "
        "RETURN strip(to_tsvector('simple'::regconfig, array_to_string(found, ' '))); END $$",
        f"CREATE OR REPLACE FUNCTION {s}.mailgate_stems(v tsvector) RETURNS tsvector "
        f"{_FUNCTION} DECLARE listed text := {listed}; BEGIN RETURN strip({stems}); END $$",
        f"CREATE OR REPLACE FUNCTION {s}.mailgate_subject_doc(subject text) RETURNS tsvector "
        f"{_FUNCTION} DECLARE v tsvector := {s}.mailgate_lexemes(subject); "
        f"BEGIN RETURN v || {s}.mailgate_stems(v); END $$",
        # An article's words as mailgate_article_tsv has them, and the stems of its text's.
        f"CREATE OR REPLACE FUNCTION {s}.mailgate_article_doc(body text, from_addr text, "
        f"from_name text, to_addrs text, cc_addrs text) RETURNS tsvector {_FUNCTION} "
        f"DECLARE v tsvector := {s}.mailgate_lexemes(left(body, {MAX_INDEXED})); "
        f"BEGIN RETURN v || {s}.mailgate_lexemes({people} || ' ' || to_addrs || ' ' "
        f"|| cc_addrs) || strip({s}.mailgate_field('zqf', {people})) "
        f"|| strip({s}.mailgate_field('zqt', to_addrs || ' ' || cc_addrs)) "
        f"|| {s}.mailgate_stems(v); END $$",
        f"CREATE OR REPLACE FUNCTION {s}.mailgate_add(doc tsvector, more tsvector) "
        "RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN "
        f"pg_column_size(doc) + pg_column_size(more) < {MAX_DOCUMENT} THEN doc || more "
        "ELSE doc END $$",
        f"CREATE OR REPLACE AGGREGATE {union}(tsvector) "
        f"(SFUNC = {s}.mailgate_add, STYPE = tsvector, INITCOND = '')",
        f"CREATE OR REPLACE FUNCTION {s}.mailgate_ticket_doc(tid integer) RETURNS tsvector "
        "LANGUAGE sql STABLE AS $$ SELECT "
        f"coalesce((SELECT {_TICKET_DOCUMENT.format(s=s, r='t')} FROM {s}.ticket t "
        "WHERE t.id = tid), '') "
        f"|| coalesce((SELECT {union}({_ARTICLE_DOCUMENT.format(s=s, r='a')}) "
        f"FROM {s}.article a WHERE a.ticket_id = tid), '') "
        f"|| coalesce((SELECT {union}({_FILE_WORDS.format(s=s, r='f')}) FROM {s}.attachment f "
        f"JOIN {s}.article a ON a.id = f.article_id WHERE a.ticket_id = tid), '') "
        f"|| coalesce((SELECT {union}({_REFERENCE_WORDS.format(s=s, r='r')}) "
        f"FROM {s}.ticketreference r WHERE r.ticket_id = tid), '') $$",
        # Whether a row of the ticket holds a phrase: its words in order (the rows' own
        # words, with positions, as the document has none).
        f"CREATE OR REPLACE FUNCTION {s}.mailgate_phrase_in(tid integer, q tsquery) "
        "RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT "
        f"EXISTS (SELECT 1 FROM {s}.ticket t WHERE t.id = tid "
        f"AND {s}.mailgate_words(t.subject) @@ q) "
        f"OR EXISTS (SELECT 1 FROM {s}.article a WHERE a.ticket_id = tid "
        f"AND {_ARTICLE_WORDS.format(s=s, r='a')} @@ q) "
        f"OR EXISTS (SELECT 1 FROM {s}.ticketreference r WHERE r.ticket_id = tid "
        f"AND {s}.mailgate_tagged('zqr', r.reference) @@ q) "
        f"OR EXISTS (SELECT 1 FROM {s}.attachment f JOIN {s}.article a ON a.id = f.article_id "
        f"WHERE a.ticket_id = tid AND {s}.mailgate_tagged('zqa', f.filename) @@ q) $$",
    ]


def triggers(schema: str) -> list[str]:
    """The triggers that keep the documents, each dropped first: a new ticket's document is
    written at commit; a row added to a ticket that has one adds its words; a changed or
    removed row has the ticket's document written again from what is there."""
    s = f'"{schema}"'
    # OFFSET 0 keeps the subquery apart: merged into the outer one, its document was
    # computed twice, once for the words and once for their size.
    written = f"(words, bytes) = (SELECT w, pg_column_size(w) FROM (SELECT {s}.mailgate_ticket_doc"
    refresh = f"UPDATE {s}.search_doc SET {written}(ticket_id) AS w OFFSET 0) AS x) WHERE"

    def append(template: str) -> str:
        # `bytes` counts what was added (each part's size, more than its words take): the
        # document's size without reading it, which cost a fifth of the index's time. A
        # ticket without a document yet is new in this transaction: it is written at commit.
        more = "pg_column_size(more)"
        return (
            f"IF EXISTS (SELECT 1 FROM {s}.search_doc WHERE ticket_id = tid) THEN "
            f"more := {template.format(s=s, r='NEW')}; UPDATE {s}.search_doc SET words = "
            f"CASE WHEN bytes + {more} < {MAX_DOCUMENT} THEN words || more ELSE words END, "
            f"bytes = bytes + {more} WHERE ticket_id = tid; END IF;"
        )

    new_ticket = (
        f"more := {s}.mailgate_ticket_doc(NEW.id); "
        f"INSERT INTO {s}.search_doc (ticket_id, organisation_id, words, bytes) "
        f"SELECT t.id, t.organisation_id, more, pg_column_size(more) FROM {s}.ticket t "
        "WHERE t.id = NEW.id ON CONFLICT (ticket_id) DO UPDATE SET organisation_id = "
        "EXCLUDED.organisation_id, words = EXCLUDED.words, bytes = EXCLUDED.bytes;"
    )
    of_article = f"SELECT ticket_id INTO tid FROM {s}.article WHERE id = NEW.article_id;"
    statements = [
        "DROP TRIGGER IF EXISTS search_doc_new_ticket ON ticket",
        f"CREATE OR REPLACE FUNCTION {s}.search_doc_new_ticket() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ DECLARE more tsvector; BEGIN {new_ticket} RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER search_doc_new_ticket AFTER INSERT ON ticket "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {s}.search_doc_new_ticket()",
    ]
    statements += _trigger(
        s,
        "ticket",
        "UPDATE OF subject, organisation_id OR DELETE",
        "NULL;",  # not fired: its document is written at commit
        f"UPDATE {s}.search_doc SET {written}(NEW.id) AS w OFFSET 0) AS x), "
        "organisation_id = NEW.organisation_id WHERE ticket_id = NEW.id;",
        f"DELETE FROM {s}.search_doc WHERE ticket_id = OLD.id;",
    )
    statements += _trigger(
        s,
        "article",
        "INSERT OR DELETE OR UPDATE OF text, from_addr, from_name, to_addrs, cc_addrs, ticket_id",
        f"tid := NEW.ticket_id; {append(_ARTICLE_DOCUMENT)}",
        f"{refresh} ticket_id IN (OLD.ticket_id, NEW.ticket_id);",
        f"{refresh} ticket_id = OLD.ticket_id;",
    )
    statements += _trigger(
        s,
        "attachment",
        "INSERT OR DELETE OR UPDATE OF filename, article_id",
        f"{of_article} {append(_FILE_WORDS)}",
        f"{refresh} ticket_id IN (SELECT ticket_id FROM {s}.article "
        "WHERE id IN (OLD.article_id, NEW.article_id));",
        f"{refresh} ticket_id = (SELECT ticket_id FROM {s}.article WHERE id = OLD.article_id);",
    )
    statements += _trigger(
        s,
        "ticketreference",
        "INSERT OR DELETE OR UPDATE OF reference, ticket_id",
        f"tid := NEW.ticket_id; {append(_REFERENCE_WORDS)}",
        f"{refresh} ticket_id IN (OLD.ticket_id, NEW.ticket_id);",
        f"{refresh} ticket_id = OLD.ticket_id;",
    )
    return statements


def _trigger(s: str, table: str, events: str, insert: str, update: str, delete: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS search_doc_{table} ON {table}",
        f"CREATE OR REPLACE FUNCTION {s}.search_doc_{table}() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ DECLARE more tsvector; tid integer; BEGIN "
        f"IF TG_OP = 'INSERT' THEN {insert} ELSIF TG_OP = 'UPDATE' THEN {update} "
        f"ELSE {delete} END IF; RETURN NULL; END $$",
        f"CREATE TRIGGER search_doc_{table} AFTER {events} "
        f"ON {table} FOR EACH ROW EXECUTE FUNCTION {s}.search_doc_{table}()",
    ]


TABLES = ("ticket", "article", "attachment", "ticketreference")


def fill(first: int, last: int) -> str:
    return (
        "INSERT INTO search_doc (ticket_id, organisation_id, words, bytes) "
        "SELECT id, organisation_id, w, pg_column_size(w) FROM (SELECT id, organisation_id, "
        "mailgate_ticket_doc(id) AS w FROM ticket "
        f"WHERE id >= {int(first)} AND id < {int(last)}) AS x"
    )


INDEXES = (
    "CREATE INDEX search_doc_words ON search_doc USING gin (words)",
    "CREATE INDEX search_doc_organisation ON search_doc (organisation_id)",
)


def drop() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS search_doc_new_ticket ON ticket",
        "DROP FUNCTION IF EXISTS search_doc_new_ticket()",
        *(f"DROP TRIGGER IF EXISTS search_doc_{t} ON {t}" for t in TABLES),
        *(f"DROP FUNCTION IF EXISTS search_doc_{t}()" for t in TABLES),
        "DROP TABLE IF EXISTS search_doc",
        "DROP FUNCTION IF EXISTS mailgate_phrase_in(integer, tsquery)",
        "DROP FUNCTION IF EXISTS mailgate_ticket_doc(integer)",
        "DROP FUNCTION IF EXISTS mailgate_article_doc(text, text, text, text, text)",
        "DROP FUNCTION IF EXISTS mailgate_subject_doc(text)",
        "DROP FUNCTION IF EXISTS mailgate_stems(tsvector)",
        "DROP FUNCTION IF EXISTS mailgate_lexemes(text)",
        "DROP AGGREGATE IF EXISTS mailgate_union(tsvector)",
        "DROP FUNCTION IF EXISTS mailgate_add(tsvector, tsvector)",
    ]
