"""Run a search: the tickets a Query finds, best first, each with a snippet of its text.

The same function serves `mailgate search`, `tickets list --text` and the web desk. One SQL
statement ranks and limits in the database: each term is looked up in the index (never a scan
of the tickets), and the filters apply to the tickets the terms found."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlmodel import Session, UTCDateTime

from mailgate.desk.agents import find_agent
from mailgate.desk.lifecycle import Refused, resolve_agent
from mailgate.moments import aware, local_midnight
from mailgate.search import postgres, postgres_documents, sqlite
from mailgate.search.query import Query, QueryError, parse
from mailgate.search.snippets import snippet

MAX_LIMIT = 10_000
# A search ranks at most this many of the newest tickets that match (more if more are asked
# for): narrower words or filters reach older ones.
CANDIDATES = 1000


@dataclass(frozen=True)
class Hit:
    ticket_id: int
    cid: str  # CID-1042
    subject: str
    status: str
    last_activity: datetime
    score: float
    snippet: str

    def as_json(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "cid": self.cid,
            "subject": self.subject,
            "status": self.status,
            "last_activity": self.last_activity.isoformat(),
            "score": round(self.score, 6),
            "snippet": self.snippet,
        }


def search(
    session: Session,
    query: Query | str,
    *,
    limit: int = 20,
    now: datetime | None = None,
    zone: str = "UTC",
) -> list[Hit]:
    """The best `limit` tickets for the query; QueryError for a query that cannot be run.
    after:/before: are days in `zone` (the desk's [tickets] timezone)."""
    query = parse(query) if isinstance(query, str) else query
    rows = _ranked(session, query, limit, now or datetime.now(UTC), ZoneInfo(zone))
    sql = _dialect(session)
    articles = _articles(session, [sql.article_of(row.doc) for row in rows])
    return [
        Hit(
            ticket_id=row.id,
            cid=f"CID-{row.number}",
            subject=row.subject,
            status=row.status,
            last_activity=_utc(row.last_action_at),
            score=float(row.score),
            snippet=snippet(articles.get(sql.article_of(row.doc) or 0, ""), query.terms)
            or row.subject,
        )
        for row in rows
    ]


def matching_ids(
    session: Session, query: Query | str, limit: int = MAX_LIMIT, zone: str = "UTC"
) -> list[int]:
    """The ids of the tickets found, best first (for `tickets list --text`)."""
    query = parse(query) if isinstance(query, str) else query
    rows = _ranked(session, query, limit, datetime.now(UTC), ZoneInfo(zone), with_docs=False)
    return [row.id for row in rows]


def _dialect(session: Session) -> ModuleType:
    return sqlite if session.get_bind().dialect.name == "sqlite" else postgres


def _ranked(
    session: Session,
    query: Query,
    limit: int,
    now: datetime,
    zone: ZoneInfo,
    with_docs: bool = True,
) -> list[Any]:
    """Two steps: the newest tickets that match (at most CANDIDATES, or `limit` if more),
    read from the index without scoring; then those ranked. Scoring every row that holds a
    common word cost a second on a desk of 500,000 tickets; the newest thousand of them are
    what a search for it is after."""
    sql = _dialect(session)
    limit = max(1, min(int(limit), MAX_LIMIT))
    params: dict[str, Any] = {"now": now, "limit": limit}
    where = _filters(session, query, params, zone)
    if not query.terms:
        return _run(
            session,
            "SELECT t.id, t.number, t.subject, t.status, t.last_action_at, 0.0 AS score, "
            f"0 AS doc FROM ticket t WHERE {' AND '.join(where) or '1 = 1'} "
            "ORDER BY t.last_action_at DESC, t.id DESC LIMIT :limit",
            params,
        )
    params["cap"] = max(CANDIDATES, limit)
    where += _parts(sql, query, params)
    words = replace(
        query,
        terms=tuple(t for t in query.terms if not t.part),
        excluded=tuple(t for t in query.excluded if not t.part),
    )
    if not words.terms:  # parts of words only: the newest tickets that have them
        statement = f"SELECT t.id FROM ticket t WHERE {' AND '.join(where)} "
        statement += "ORDER BY t.id DESC LIMIT :cap"
    elif sql is sqlite:
        for index, term in enumerate(words.terms):
            params[f"m{index}"] = sqlite.match(term)
        for index, term in enumerate(words.excluded):
            params[f"x{index}"] = sqlite.match(term)
        statement = sqlite.candidates(len(words.terms), len(words.excluded), where)
    else:
        statement = _postgres_candidates(session, words, params, where)
    ids = [row[0] for row in _run(session, statement, params)]
    if not ids:
        return []
    if not words.terms:
        return _run(session, _by_recency(ids), params)
    if sql is sqlite:
        return _run(session, sqlite.ranked(len(words.terms), ids), params)
    subject = [postgres.match(t, field_prefix=False) for t in words.terms if t.field is None]
    article = [postgres.match(t) for t in words.terms if t.field in (None, "from", "to")]
    statement, more = postgres.ranked(subject, article, ids, with_docs)
    return _run(session, statement, {"now": now, "limit": limit, **more})


def _parts(sql: ModuleType, query: Query, params: dict[str, Any]) -> list[str]:
    """The conditions of the *parts of words, wanted and excluded."""
    where = []
    for sign, terms in (("", query.terms), ("NOT ", query.excluded)):
        for term in (t for t in terms if t.part):
            param = f"part{len(where)}"
            if sql is sqlite:
                params[param] = sqlite.part_match(term)
                where.append(f"{sign}{sqlite.has_part(param)}")
            else:
                params[param] = postgres.part_pattern(term)
                where.append(f"{sign}{postgres.has_part(param, term)}")
    return where


def _by_recency(ids: list[int]) -> str:
    numbers = ", ".join(str(int(i)) for i in ids)
    return (
        "SELECT t.id, t.number, t.subject, t.status, t.last_action_at, 0.0 AS score, 0 AS doc "
        f"FROM ticket t WHERE t.id IN ({numbers}) "
        "ORDER BY t.last_action_at DESC, t.id DESC LIMIT :limit"
    )


def _postgres_candidates(
    session: Session, query: Query, params: dict[str, Any], where: list[str]
) -> str:
    """Terms that name no organisation go into one tsquery (:q), one look-up in the index;
    a term that names some is its words or those organisations' tickets."""
    connection = session.connection()
    plain, conditions, in_order = [], [], []
    for index, term in enumerate(query.terms):
        named = postgres.organisations(connection, term)
        stems = postgres.stems(connection, term)
        if named or term.field == "org":
            conditions.append(postgres.term_condition(term, named, stems, f"t{index}", params))
        else:
            plain.append(postgres.document_match(term, stems))
        if postgres.needs_order(term):
            params[f"p{index}"] = postgres.match(term, positions=True)
            in_order.append(postgres.in_order(f"p{index}", f"t{index}o" if named else ""))
    if plain:
        params["q"] = " & ".join(f"({m})" for m in plain)
        conditions.insert(0, "d.words @@ to_tsquery('simple', :q)")
    for index, term in enumerate(query.excluded):
        named = postgres.organisations(connection, term)
        stems = postgres.stems(connection, term)
        if postgres.needs_order(term):  # without the phrase, not without its words
            params[f"xp{index}"] = postgres.match(term, positions=True)
            if named:
                params[f"x{index}o"] = named
            in_order.append(f"NOT {postgres.in_order(f'xp{index}', f'x{index}o' if named else '')}")
        else:
            condition = postgres.term_condition(term, named, stems, f"x{index}", params)
            conditions.append(f"NOT {condition}")
    return postgres.candidates(conditions, where, in_order)


def _run(session: Session, statement: str, params: dict[str, Any]) -> list[Any]:
    moments = [
        bindparam(k, type_=UTCDateTime())
        for k in ("now", "after", "before")
        if f":{k}" in statement
    ]
    bound = text(statement).bindparams(*moments)
    if ":statuses" in statement:
        bound = bound.bindparams(bindparam("statuses", expanding=True))
    used = {k: v for k, v in params.items() if f":{k}" in statement}
    connection = session.connection()
    if _dialect(session) is sqlite:
        return list(connection.execute(bound, used))
    # A plan for this query's own words: after a few executions psycopg prepares the
    # statement, and PostgreSQL's generic plan for it (the same for a rare and a common word)
    # made a 2 ms search take 55 ms. And every step reads an index: for a thousand
    # candidates' numbers the planner read all tickets in parallel (47 ms, not 8).
    connection.execute(text(postgres_documents.PENDING))  # tickets new in this transaction
    connection.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    connection.execute(text("SET LOCAL enable_seqscan = off"))
    try:
        return list(connection.execute(bound, used))
    finally:
        connection.execute(text("SET LOCAL enable_seqscan = on"))
        connection.execute(text("SET LOCAL plan_cache_mode = auto"))


def _filters(session: Session, query: Query, params: dict[str, Any], zone: ZoneInfo) -> list[str]:
    where = []
    if query.cid is not None:
        params["cid"] = query.cid
        where.append("t.number = :cid")
    if query.statuses:
        params["statuses"] = list(query.statuses)
        where.append("t.status IN :statuses")
    if query.assignee == "none":
        where.append("t.assignee_id IS NULL")
    elif query.assignee:
        params["agent"] = _agent_id(session, query.assignee)
        where.append(
            "(t.assignee_id = :agent OR t.id IN "
            "(SELECT ticket_id FROM ticketagent WHERE agent_id = :agent))"
        )
    if query.after:
        params["after"] = local_midnight(query.after, zone)
        where.append("t.last_action_at >= :after")
    if query.before:
        params["before"] = local_midnight(query.before, zone)
        where.append("t.created_at < :before")
    return where


def _agent_id(session: Session, wanted: str) -> int:
    """An agent by address (one who has left too), else by name as `#assign` finds one."""
    agent = find_agent(session, wanted)
    if agent is None:
        try:
            agent = resolve_agent(session, wanted)
        except Refused:
            raise QueryError(f"assignee:{wanted}: no agent by that address or name") from None
    return agent.id or 0


def _articles(session: Session, ids: list[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    rows = session.connection().execute(
        text("SELECT id, text FROM article WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        ),
        {"ids": wanted},
    )
    return {row.id: row.text for row in rows}


def _utc(moment: datetime | str) -> datetime:
    # SQLite hands a text() column back as text.
    return aware(datetime.fromisoformat(moment) if isinstance(moment, str) else moment)
