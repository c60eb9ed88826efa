"""Review inbox: tabs by reason with counts, the turn in its conversation, and the actions
(assign an intent, add the words to an answer or start a new one, ignore), singly or in bulk.

The list refreshes itself: a small counts fragment polls, and when the counts change it fires
``inbox-changed``, on which the list reloads (nothing reloads while nothing changed).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import String, cast, func
from sqlmodel import Session, col, select

from admin_api import inbox as service
from admin_api.api.deps import SessionDep, StaffUser, TrackerDep
from admin_api.api.paging import Paging, Window
from admin_api.api.routes import inbox as api
from admin_api.api.routes.conversations import transcript_entries
from admin_api.console import try_it
from admin_api.console.forms import blank, choice
from admin_api.console.pages import is_htmx, notice, render
from admin_api.models import AssignIntent, FeedbackStatus, LinkAnswer, ReviewItem, ReviewReason
from admin_api.tracker import TrackerStore
from common.config import get_settings
from common.errors import DomainError
from retrieval.answers import AnswerData

router = APIRouter(prefix="/inbox")
TABS = [(ReviewReason.thumbs_down, "Thumbs-down"), (ReviewReason.fallback, "Fallbacks"),
        (ReviewReason.clarify, "Clarifications"), (ReviewReason.low_confidence, "Low confidence")]
CONTEXT_TURNS = 3


def _reason_filter(query: Any, reason: ReviewReason) -> Any:
    return query.where(cast(col(ReviewItem.reasons), String).contains(f'"{reason.value}"'))


def counts(session: Session) -> dict[str, int]:
    found = {}
    for reason, _ in TABS:
        query = select(func.count()).select_from(ReviewItem).where(  # type: ignore[call-overload]
            ReviewItem.status == FeedbackStatus.new.value)
        found[reason.value] = int(session.exec(_reason_filter(query, reason)).one())
    return found


def _signature(session: Session) -> str:
    """Changes when something arrives (a new item, or a repeat merged into one), not when
    staff settle items: their own actions must not reload the list under their keyboard."""
    newest = session.exec(select(func.max(ReviewItem.id))).one() or 0  # type: ignore[call-overload]
    repeats = session.exec(select(func.sum(ReviewItem.repeats))).one() or 0  # type: ignore[call-overload]
    return f"{newest}-{repeats}"


@router.get("", response_class=HTMLResponse)
def inbox_page(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
               reason: str | None = Query("thumbs_down", max_length=20),
               status: str | None = Query("new", max_length=20),
               paging: Paging = Depends()) -> HTMLResponse:
    tab = choice(ReviewReason, reason, "reason") or ReviewReason.thumbs_down
    state = choice(FeedbackStatus, status, "status")
    page = api.list_inbox(reason=tab, status_=state, intent=None,
                          window=_no_window(), sort="-turn_at", paging=paging,
                          session=session, store=store, _=caller)
    found = counts(session)
    template = "inbox/_list.html" if is_htmx(request) else "inbox/page.html"
    return render(request, template, caller, page=page, tab=tab.value, tabs=TABS,
                  counts=found, status=state.value if state else "",
                  signature=_signature(session),
                  intents=try_it.model_intents(session))


def _no_window() -> Window:
    return Window(since=None, until=None)


@router.get("/counts", response_class=HTMLResponse)
def inbox_counts(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
                 known: str = Query("", max_length=200),
                 reason: str = Query("thumbs_down", max_length=20)) -> HTMLResponse:
    service.sync(session, store, get_settings().review_confidence_below)
    found = counts(session)
    signature = _signature(session)
    headers = {"HX-Trigger": "inbox-changed"} if known and signature != known else None
    return render(request, "inbox/_counts.html", caller, headers=headers, counts=found,
                  tabs=TABS, tab=reason, signature=signature)


def _context(store: TrackerStore, item: ReviewItem) -> dict:
    """The item's turn among its neighbours, and the model's ranking for it."""
    events = store.events(item.session_id)
    ranking: list[dict] = []
    for event in events:
        if event.get("type") == "user" and event.get("message_id") == item.message_id:
            ranking = list((event.get("parse_data") or {}).get("intent_ranking") or [])[:5]
    entries = transcript_entries(events)
    at = next((i for i, e in enumerate(entries) if e.get("message_id") == item.message_id), None)
    if at is None:
        return {"entries": entries[-2 * CONTEXT_TURNS:], "ranking": ranking, "at": None}
    window = entries[max(0, at - CONTEXT_TURNS):at + CONTEXT_TURNS + 1]
    return {"entries": window, "ranking": ranking, "at": entries[at]}


@router.get("/{item_id}", response_class=HTMLResponse)
def item_detail(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
                item_id: int = api.ItemId) -> HTMLResponse:
    item = api.read_item(item_id=item_id, session=session, _=caller)
    template = "inbox/_detail.html" if is_htmx(request) else "inbox/item.html"
    return render(request, template, caller, item=item, **_context(store, item),
                  intents=try_it.model_intents(session))


def _row(request: Request, item: ReviewItem, caller: object, message: str) -> HTMLResponse:
    return render(request, "inbox/_settled.html", caller, item=item,  # type: ignore[arg-type]
                  message=message)


@router.post("/{item_id}/assign-intent", response_class=HTMLResponse)
def assign(request: Request, session: SessionDep, caller: StaffUser,
           item_id: int = api.ItemId,
           intent: str = Form(..., min_length=1, max_length=100)) -> HTMLResponse:
    example: Any = api.assign_intent(body=AssignIntent(intent=intent.strip()), item_id=item_id,
                                session=session, caller=caller)
    item = session.get(ReviewItem, item_id)
    return _row(request, item, caller,  # type: ignore[arg-type]
                f"Assigned {intent}: training example {example.id} awaits approval.")


@router.post("/{item_id}/link-answer", response_class=HTMLResponse)
def link(request: Request, session: SessionDep, caller: StaffUser,
         item_id: int = api.ItemId,
         answer_id: int = Form(..., ge=1, le=2**31 - 1)) -> HTMLResponse:
    answer: Any = api.link_answer(body=LinkAnswer(answer_id=answer_id, answer=None),
                                  item_id=item_id,
                             session=session, caller=caller)
    item = session.get(ReviewItem, item_id)
    return _row(request, item, caller,  # type: ignore[arg-type]
                f"Added as a question of answer {answer.id} ({answer.title}).")


@router.post("/{item_id}/new-answer", response_class=HTMLResponse)
def new_answer(request: Request, session: SessionDep, caller: StaffUser,
               item_id: int = api.ItemId) -> Response:
    """A draft answer with the customer's words as its first question, opened in the editor."""
    item = api.read_item(item_id=item_id, session=session, _=caller)
    words = " ".join((item.text or "").split())
    title = words[:80] or f"Answer for review item {item_id}"
    draft = AnswerData(id=None, title=title, body="(write the answer here)", intent=item.intent,
                       questions=[])
    answer: Any = api.link_answer(body=LinkAnswer(answer_id=None, answer=draft),
                                  item_id=item_id, session=session, caller=caller)
    return notice(request, f"Draft answer {answer.id} created.",
                  headers={"HX-Redirect": f"/console/answers/{answer.id}"})


@router.post("/{item_id}/ignore", response_class=HTMLResponse)
def ignore(request: Request, session: SessionDep, caller: StaffUser,
           item_id: int = api.ItemId) -> HTMLResponse:
    item = api.ignore_item(item_id=item_id, session=session, caller=caller)
    return _row(request, item, caller, "Ignored: repeats of these words stay ignored.")


@router.post("/bulk", response_class=HTMLResponse)
async def bulk(request: Request, session: SessionDep, caller: StaffUser) -> HTMLResponse:
    """Ignore or assign one intent to the selected items (the page asked for confirmation);
    each item's outcome is reported, a settled one does not stop the rest."""
    form = await request.form()
    ids = [int(str(v)) for v in form.getlist("item") if str(v).isdigit()][:200]
    action = blank(str(form.get("action") or ""))
    intent = blank(str(form.get("intent") or ""))
    if not ids:
        return notice(request, "Select at least one item.", status_code=422, kind="error")
    if action not in ("ignore", "assign") or (action == "assign" and not intent):
        return notice(request, "Choose ignore, or assign with an intent.", status_code=422,
                      kind="error")
    done, failed = [], []
    for item_id in ids:
        try:
            if action == "ignore":
                api.ignore_item(item_id=item_id, session=session, caller=caller)
            else:
                api.assign_intent(body=AssignIntent(intent=str(intent)), item_id=item_id,
                                  session=session, caller=caller)
            done.append(item_id)
        except (DomainError, ValueError) as error:
            session.rollback()
            failed.append(f"{item_id}: {error}")
    message = f"{'Ignored' if action == 'ignore' else 'Assigned ' + str(intent) + ' to'} " \
              f"{len(done)} item(s)."
    if failed:
        message += " Not done: " + "; ".join(failed)
    return notice(request, message, kind="error" if failed else "ok",
                  headers={"HX-Trigger": "inbox-changed"})
