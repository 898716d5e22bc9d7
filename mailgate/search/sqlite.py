"""The index on SQLite: contentless FTS5 tables kept by triggers, and their queries.

`search_fts` holds the words; `search_parts` the runs of three characters of the short texts
(subjects, file names, references), for `*part`. Each row is one source of text, its rowid
`ticket << 32 | source id << 3 | kind`: the ticket is read off the rowid without a join, and
a row is deleted by the values it was written with (a contentless table keeps no copy of the
text: the index stays smaller than the text)."""

from __future__ import annotations

from mailgate.search.query import MAX_INDEXED, Term

TICKET_SHIFT = 1 << 32
ARTICLE, TICKET, ATTACHMENT, REFERENCE, ORGANISATION = range(5)
COLUMNS = {"from": "sender", "to": "recipients", "org": "org", "ref": "refs", "file": "files"}
# bm25 weights in column order: a subject match above a reference, above the text, ...
WEIGHTS = "10.0, 3.0, 2.0, 1.0, 2.0, 4.0, 2.0"

TABLE = (
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "subject, body, sender, recipients, files, refs, org, "
    "content='', tokenize='unicode61 remove_diacritics 2')"
)
SETUP = [TABLE]
PARTS = "search_parts"
PARTS_TABLE = (
    f"CREATE VIRTUAL TABLE {PARTS} USING fts5(subject, files, refs, content='', tokenize='trigram')"
)

# What each kind of row holds: (rowid, column values) as SQL over a row `{r}` of its table.
_ARTICLE = (
    f"{{r}}.ticket_id * {TICKET_SHIFT} + {{r}}.id * 8",
    {
        "body": f"substr({{r}}.text, 1, {MAX_INDEXED})",
        "sender": "{r}.from_addr || ' ' || {r}.from_name",
        "recipients": "{r}.to_addrs || ' ' || {r}.cc_addrs",
    },
)
_TICKET = (f"{{r}}.id * {TICKET_SHIFT} + {{r}}.id * 8 + 1", {"subject": "{r}.subject"})
_ATTACHMENT = (
    f"(SELECT ticket_id FROM article WHERE id = {{r}}.article_id) * {TICKET_SHIFT}"
    " + {r}.id * 8 + 2",
    {"files": "{r}.filename"},
)
_REFERENCE = (f"{{r}}.ticket_id * {TICKET_SHIFT} + {{r}}.rowid * 8 + 3", {"refs": "{r}.reference"})
_ORGANISATION = ("{r}.id * 8 + 4", {"org": "{r}.name"})

# table -> (row, the columns whose change rewrites it)
SOURCES = {
    "article": (_ARTICLE, "text, from_addr, from_name, to_addrs, cc_addrs, ticket_id"),
    "ticket": (_TICKET, "subject"),
    "attachment": (_ATTACHMENT, "filename"),
    "ticketreference": (_REFERENCE, "reference"),
    "organisation": (_ORGANISATION, "name"),
}


# The short texts in search_parts: the same rows, by the same rowids.
PART_SOURCES = {
    "ticket": (_TICKET, "subject"),
    "attachment": (_ATTACHMENT, "filename"),
    "ticketreference": (_REFERENCE, "reference"),
}
_TRIGGER_NAMES = {"search_fts": "search", PARTS: PARTS}


def _write(fts: str, row: tuple[str, dict[str, str]], alias: str, delete: bool = False) -> str:
    rowid, values = row
    columns = ", ".join(values)
    exprs = ", ".join(v.format(r=alias) for v in values.values())
    if delete:
        return (
            f"INSERT INTO {fts}({fts}, rowid, {columns}) "
            f"VALUES ('delete', {rowid.format(r=alias)}, {exprs});"
        )
    return f"INSERT INTO {fts}(rowid, {columns}) VALUES ({rowid.format(r=alias)}, {exprs});"


def _sources(fts: str) -> dict[str, tuple[tuple[str, dict[str, str]], str]]:
    return SOURCES if fts == "search_fts" else PART_SOURCES


def trigger_names(fts: str = "search_fts") -> list[str]:
    return [f"{_TRIGGER_NAMES[fts]}_{t}_{w}" for t in _sources(fts) for w in ("ai", "au", "ad")]


def triggers(fts: str = "search_fts") -> list[str]:
    """The statements that keep an index in step, in the writer's own transaction."""
    statements = []
    for table, (row, watched) in _sources(fts).items():
        name = f"{_TRIGGER_NAMES[fts]}_{table}"
        statements += [
            f"CREATE TRIGGER {name}_ai AFTER INSERT ON {table} BEGIN {_write(fts, row, 'new')} END",
            f"CREATE TRIGGER {name}_au AFTER UPDATE OF {watched} ON {table} BEGIN "
            f"{_write(fts, row, 'old', delete=True)} {_write(fts, row, 'new')} END",
            f"CREATE TRIGGER {name}_ad AFTER DELETE ON {table} BEGIN "
            f"{_write(fts, row, 'old', delete=True)} END",
        ]
    return statements


def drop(fts: str = "search_fts") -> list[str]:
    names = trigger_names(fts)
    return [f"DROP TRIGGER IF EXISTS {n}" for n in names] + [f"DROP TABLE IF EXISTS {fts}"]


def backfill(table: str, fts: str = "search_fts") -> str:
    """Index the rows of `table` with ids in [:first, :last)."""
    rowid, values = _sources(fts)[table][0]
    exprs = ", ".join(v.format(r="r") for v in values.values())
    key = "rowid" if table == "ticketreference" else "id"
    return (
        f"INSERT INTO {fts}(rowid, {', '.join(values)}) "
        f"SELECT {rowid.format(r='r')}, {exprs} FROM {table} r "
        f"WHERE r.{key} >= :first AND r.{key} < :last"
    )


def id_range(table: str) -> str:
    key = "rowid" if table == "ticketreference" else "id"
    return f"SELECT min({key}), max({key}) FROM {table}"


def match(term: Term) -> str:
    """The term as an FTS5 expression: each spelling a quoted phrase (so no character the
    user typed is FTS5 syntax), in its column for from:, to:, ..."""
    star = "*" if term.prefix else ""
    column = f"{COLUMNS[term.field]} : " if term.field else ""
    return " OR ".join(f'{column}"{variant}"{star}' for variant in term.variants())


def term_tickets(index: int) -> str:
    """The tickets one term matches, read off the rowids (no score computed: cheap for a word
    in every fourth mail), tickets of a matching organisation included."""
    return (
        f"SELECT rowid >> 32 FROM search_fts WHERE search_fts MATCH :m{index} "
        f"AND rowid >= {TICKET_SHIFT} "
        f"UNION ALL SELECT t.id FROM ticket t WHERE t.organisation_id IN "
        f"(SELECT rowid >> 3 FROM search_fts WHERE search_fts MATCH :m{index} "
        f"AND rowid < {TICKET_SHIFT})"
    )


def candidates(terms: int, excluded: int, where: list[str]) -> str:
    """The newest tickets that every term and none of the excluded matches."""
    conditions = [f"t.id IN ({term_tickets(i)})" for i in range(terms)]
    conditions += [f"t.id NOT IN ({_excluded(i)})" for i in range(excluded)]
    return (
        f"SELECT t.id FROM ticket t WHERE {' AND '.join(conditions + where)} "
        "ORDER BY t.id DESC LIMIT :cap"
    )


def _term_docs(index: int, ids: str, low: int, high: int) -> str:
    """One term's rows among the candidates' (ticket, row, score, term number): bm25 is
    computed for these rows only (the rowid range is the index's own look-up). `+` keeps
    SQLite from pairing each candidate with each matching organisation in the index of
    tickets by organisation (1,000 x 1,200 look-ups for `mueller`): it reads the candidates."""
    return (
        f"SELECT rowid >> 32 AS tid, rowid AS doc, -bm25(search_fts, {WEIGHTS}) AS s, "
        f"{index} AS k FROM search_fts WHERE search_fts MATCH :m{index} "
        f"AND rowid BETWEEN {low} AND {high} AND (rowid >> 32) IN ({ids}) "
        f"UNION ALL SELECT t.id, 0, 1.0, {index} FROM ticket t WHERE t.id IN ({ids}) "
        f"AND +t.organisation_id IN (SELECT rowid >> 3 FROM search_fts "
        f"WHERE search_fts MATCH :m{index} AND rowid < {TICKET_SHIFT})"
    )


def ranked(terms: int, ids: list[int]) -> str:
    """The candidates by score (bm25 of each term's rows, then recency), with the newest
    matching article for the snippet."""
    numbers = ", ".join(str(int(i)) for i in ids)
    low, high = min(ids) * TICKET_SHIFT, (max(ids) + 1) * TICKET_SHIFT - 1
    docs = " UNION ALL ".join(_term_docs(i, numbers, low, high) for i in range(terms))
    found = (
        "SELECT tid, SUM(s) AS s, MAX(CASE WHEN doc % 8 = 0 THEN doc END) AS doc "
        f"FROM ({docs}) AS d GROUP BY tid"
    )
    return (
        f"SELECT t.id, t.number, t.subject, t.status, t.last_action_at, "
        f"h.s * {RECENCY} AS score, h.doc FROM ({found}) AS h JOIN ticket t ON t.id = h.tid "
        "ORDER BY score DESC, t.last_action_at DESC, t.id DESC LIMIT :limit"
    )


def _excluded(index: int) -> str:
    return (
        f"SELECT rowid >> 32 FROM search_fts WHERE search_fts MATCH :x{index} "
        f"AND rowid >= {TICKET_SHIFT}"
    )


def part_match(term: Term) -> str:
    """A *part as an FTS5 phrase of its runs of three characters, in its column for file:
    and ref:; `"` cannot be in it (query.py refuses it)."""
    column = f"{COLUMNS[term.field]} : " if term.field else ""
    return f'{column}"{term.words[0]}"'


def has_part(param: str) -> str:
    return f"t.id IN (SELECT rowid >> 32 FROM {PARTS} WHERE {PARTS} MATCH :{param})"


def article_of(doc: int) -> int | None:
    """The article a matching row is, or None for a row of another kind."""
    return (doc & 0xFFFFFFFF) >> 3 if doc and doc & 7 == ARTICLE else None


# The ticket's relevance, lowered by a year of quiet to half: newer first among equals.
RECENCY = "(1.0 / (1.0 + (julianday(:now) - julianday(t.last_action_at)) / 365.0))"
