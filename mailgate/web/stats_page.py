"""Statistics on the web desk: what `mailgate stats` prints (tickets by category and status,
first response and resolution times, targets missed), with the last seven days' tickets
opened and left unresolved as bar charts drawn on the server (SVG: no script, no library)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from mailgate.reports.stats import collect, hours
from mailgate.web.pages import page
from mailgate.web.staff import desk_of, signed_in

router = APIRouter(include_in_schema=False)
WIDTH, HEIGHT, LABELS = 420, 140, 18  # the chart's drawing area and the room for day labels


def bars(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Each day's bar of a chart, scaled to the largest day: position, size, label, value."""
    most = max((row[key] for row in rows), default=0) or 1
    step = WIDTH / max(len(rows), 1)
    drawn = []
    for n, row in enumerate(rows):
        height = round(row[key] / most * (HEIGHT - LABELS - 14))
        drawn.append(
            {
                "x": round(n * step + step * 0.15),
                "width": round(step * 0.7),
                "y": HEIGHT - LABELS - height,
                "height": height,
                "label": row["day"][5:],  # MM-DD
                "middle": round(n * step + step / 2),
                "value": row[key],
            }
        )
    return drawn


@router.get("/desk/stats")
def stats_page(request: Request) -> Response:
    desk = desk_of(request)
    ctx = desk.ctx
    with ctx.store.session() as db:
        staff = signed_in(request, db)
        if staff is None:
            return RedirectResponse("/sign-in", status_code=303)
        data = collect(db, ctx.config, ctx.clock(), days=7)
    context = {
        "data": data,
        "opened": bars(data["opened_per_day"], "opened"),
        "backlog": bars(data["backlog"], "unresolved"),
        "area": {"width": WIDTH, "height": HEIGHT, "base": HEIGHT - LABELS},
        "hours": hours,
        "staff": staff,
        "q": "",
    }
    return page("stats", staff.lang, context)
