"""Conversations: the list with filters, and a transcript that loads the newest turns first
and older ones on demand, each turn linked to its inbox item; admins may erase one."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import select

from admin_api.api.deps import AdminUser, SessionDep, StaffUser, TrackerDep
from admin_api.api.routes import conversations as api
from admin_api.api.routes.conversations import transcript_entries
from admin_api.console.forms import blank, choice, day, number
from admin_api.console.pages import is_htmx, notice, render
from admin_api.models import Rating, ReviewItem
from common.errors import Invalid
from common.text import is_intent_name

router = APIRouter(prefix="/conversations")
PAGE = 30


@router.get("", response_class=HTMLResponse)
def conversation_list(request: Request, session: SessionDep, store: TrackerDep,
                      caller: StaffUser,
                      q: str | None = Query(None, max_length=200),
                      since: str | None = Query(None, max_length=10),
                      until: str | None = Query(None, max_length=10),
                      intent: str | None = Query(None, max_length=100),
                      confidence_below: str | None = Query(None, max_length=10),
                      rating: str | None = Query(None, max_length=10),
                      model_id: str | None = Query(None, max_length=128),
                      handed_off: str | None = Query(None, max_length=8),
                      limit: int = Query(50, ge=1, le=500),
                      offset: int = Query(0, ge=0, le=10_000_000)) -> HTMLResponse:
    """The API's filters, read from a form that sends every field (empty: not given)."""
    filters = {"q": blank(q), "since": blank(since), "until": blank(until),
               "intent": blank(intent), "confidence_below": blank(confidence_below),
               "rating": blank(rating), "model_id": blank(model_id),
               "handed_off": blank(handed_off)}
    if filters["handed_off"] not in (None, "yes", "no", "waiting"):
        raise Invalid("handed_off: yes, no or waiting")
    if filters["intent"] is not None and not is_intent_name(filters["intent"]):
        raise Invalid(f"intent: {filters['intent']!r} is not an intent name")
    turns = api.TurnFilters(
        intent=filters["intent"],
        confidence_below=number(filters["confidence_below"], "confidence_below", 0, 1),
        model_id=filters["model_id"], rating=choice(Rating, filters["rating"], "rating"),
        handed_off={"yes": True, "no": False}.get(filters["handed_off"] or ""))
    query = turns.query(session)
    paused_now = store.paused()
    if filters["handed_off"] == "waiting":
        query["session_ids"] = [s for s in paused_now if query["session_ids"] is None
                                or s in query["session_ids"]]
    total, rows = store.conversations(q=filters["q"], since=day(since, "since"),
                                      until=day(until, "until"), sort="-last_at",
                                      limit=limit, offset=offset, **query)
    texts = store.last_texts([r["session_id"] for r in rows])
    page = {"items": [{**r, "paused": r["session_id"] in paused_now,
                       "last_message": texts.get(r["session_id"])} for r in rows],
            "total": total, "limit": limit, "offset": offset}
    template = "conversations/_list.html" if is_htmx(request) else "conversations/page.html"
    base = "/console/conversations?" + urlencode({k: v for k, v in filters.items() if v})
    return render(request, template, caller, page=page, filters=filters, base=base)


def _transcript(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
                session_id: str, before: int | None, template: str) -> HTMLResponse:
    events = store.events(session_id)
    if not events:
        raise api.not_found("conversation", session_id)
    entries = transcript_entries(events)
    end = len(entries) if before is None else max(0, min(before, len(entries)))
    start = max(0, end - PAGE)
    items = {i.message_id: i.id for i in session.exec(select(ReviewItem).where(
        ReviewItem.session_id == session_id)).all()}
    return render(request, template, caller, session_id=session_id,
                  entries=entries[start:end], older=start if start > 0 else None,
                  items=items, total=len(entries))


@router.get("/{session_id}", response_class=HTMLResponse)
def transcript_page(request: Request, session: SessionDep, store: TrackerDep,
                    caller: StaffUser, session_id: str = api.SessionId,
                    before: int | None = Query(None, ge=0, le=10_000_000)) -> HTMLResponse:
    template = ("conversations/_older.html" if before is not None
                else "conversations/transcript.html")
    return _transcript(request, session, store, caller, session_id, before, template)


@router.post("/{session_id}/erase", response_class=HTMLResponse)
def erase(request: Request, session: SessionDep, store: TrackerDep, caller: AdminUser,
          session_id: str = api.SessionId) -> Response:
    counts = api.erase_conversation(session_id=session_id, session=session, store=store,
                                    caller=caller)
    return notice(request, f"Erased: {counts['events']} events, {counts['feedback']} feedback, "
                           f"{counts['review_items']} review items.",
                  headers={"HX-Redirect": "/console/conversations"})
