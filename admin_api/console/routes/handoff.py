"""Live hand-off: the queue (it refreshes itself, and the navigation's badge notifies on a new
conversation from any page), claiming, the conversation with a reply box and canned replies,
releasing, and giving the conversation back to the bot."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, select

from admin_api import handoff
from admin_api.api.deps import Caller, SessionDep, StaffUser, TrackerDep, get_user
from admin_api.api.routes import handoff as api
from admin_api.api.routes.conversations import transcript_entries
from admin_api.console.pages import notice, render
from admin_api.models import CannedReply
from admin_api.tracker import TrackerStore
from common import audit

router = APIRouter(prefix="/handoff")
SessionId = api.SessionId
TRANSCRIPT_PAGE = 30


def _signature(waiting: list[handoff.Waiting]) -> str:
    return "|".join(f"{w.session_id}:{w.holder or ''}" for w in waiting)


def _canned(session: Session) -> list[CannedReply]:
    return list(session.exec(select(CannedReply).order_by(CannedReply.title)).all())


@router.get("", response_class=HTMLResponse)
def queue_page(request: Request, session: SessionDep, store: TrackerDep,
               caller: StaffUser) -> HTMLResponse:
    waiting = handoff.queue(session, store)
    return render(request, "handoff/page.html", caller, waiting=waiting,
                  signature=_signature(waiting), canned=_canned(session))


@router.get("/queue", response_class=HTMLResponse)
def queue_fragment(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
                   known: str = Query("", max_length=20000)) -> Response:
    """The queue, polled; unchanged since ``known``: 204 and nothing is swapped."""
    waiting = handoff.queue(session, store)
    signature = _signature(waiting)
    if signature == known:
        return Response(status_code=204)
    return render(request, "handoff/_queue.html", caller, waiting=waiting, signature=signature)


@router.get("/badge", response_class=HTMLResponse)
def badge(request: Request, store: TrackerDep, caller: StaffUser) -> HTMLResponse:
    """How many wait and which arrived last, for the navigation's badge and notification."""
    paused = store.paused()
    newest = max(paused.items(), key=lambda kv: kv[1]) if paused else None
    text = None
    if newest is not None:
        turns = store.turns(session_id=newest[0])
        text = turns[-1].text if turns else None
    return render(request, "handoff/_badge.html", caller, count=len(paused),
                  newest=f"{newest[0]}@{newest[1].isoformat()}" if newest else "",
                  newest_text=text or "")


@router.post("/{session_id}/claim", response_class=HTMLResponse)
def claim(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
          session_id: str = SessionId) -> Response:
    api.claim(session_id=session_id, session=session, store=store, caller=caller)
    return notice(request, "Claimed.", headers={"HX-Redirect": f"/console/handoff/{session_id}"})


def _conversation(request: Request, session: Session, store: TrackerStore, caller: Caller,
                  session_id: str, template: str, before: int | None = None) -> HTMLResponse:
    entries = transcript_entries(store.events(session_id))
    end = len(entries) if before is None else max(0, min(before, len(entries)))
    start = max(0, end - TRANSCRIPT_PAGE)
    claim = handoff.live_claims(session).get(session_id)
    if claim is not None and claim.user_id == caller.user_id:
        handoff.claim(session, store, session_id, get_user(session, caller.user_id))
        session.commit()  # the holder is still here
    return render(request, template, caller, session_id=session_id,
                  entries=entries[start:end], older=start if start > 0 else None,
                  total=len(entries), claim=claim,
                  waiting=session_id in store.paused(), canned=_canned(session))


@router.get("/{session_id}", response_class=HTMLResponse)
def conversation(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
                 session_id: str = SessionId) -> HTMLResponse:
    return _conversation(request, session, store, caller, session_id, "handoff/conversation.html")


@router.get("/{session_id}/transcript", response_class=HTMLResponse)
def transcript(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
               session_id: str = SessionId,
               before: int | None = Query(None, ge=0, le=10_000_000)) -> HTMLResponse:
    template = "handoff/_older.html" if before is not None else "handoff/_live.html"
    return _conversation(request, session, store, caller, session_id, template, before)


@router.post("/{session_id}/reply", response_class=HTMLResponse)
def reply(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
          session_id: str = SessionId,
          text: str = Form(..., min_length=1, max_length=4000)) -> HTMLResponse:
    try:
        handoff.claim(session, store, session_id, get_user(session, caller.user_id))
        session.commit()  # whoever replies holds the conversation
        api.reply(body=api.StaffReply(text=text), session_id=session_id, session=session,
                  store=store, caller=caller)
    except HTTPException as error:
        return notice(request, str(error.detail), status_code=error.status_code, kind="error")
    return render(request, "handoff/_reply_form.html", caller, session_id=session_id,
                  sent=True, canned=_canned(session))


@router.post("/{session_id}/release", response_class=HTMLResponse)
def release(request: Request, session: SessionDep, caller: StaffUser,
            session_id: str = SessionId) -> Response:
    api.release(session_id=session_id, session=session, caller=caller)
    return notice(request, "Released to the queue.",
                  headers={"HX-Redirect": "/console/handoff"})


@router.post("/{session_id}/resume", response_class=HTMLResponse)
def give_back(request: Request, session: SessionDep, store: TrackerDep, caller: StaffUser,
              session_id: str = SessionId) -> Response:
    api.resume(session_id=session_id, session=session, store=store, caller=caller)
    return notice(request, "The bot answers this conversation again.",
                  headers={"HX-Redirect": "/console/handoff"})


@router.post("/canned", response_class=HTMLResponse)
def add_canned(request: Request, session: SessionDep, caller: StaffUser,
               title: str = Form(..., min_length=1, max_length=100),
               text: str = Form(..., min_length=1, max_length=4000)) -> HTMLResponse:
    row = CannedReply(title=title.strip(), text=text.strip(), created_by=caller.name)
    session.add(row)
    session.flush()
    audit.record(session, caller.name, "canned_reply.create", "canned_reply", row.id)
    session.commit()
    return render(request, "handoff/_canned.html", caller, canned=_canned(session))


@router.post("/canned/{reply_id}/delete", response_class=HTMLResponse)
def delete_canned(request: Request, session: SessionDep, caller: StaffUser,
                  reply_id: int = Path(..., ge=1, le=2**31 - 1)) -> HTMLResponse:
    row = session.get(CannedReply, reply_id)
    if row is not None:
        session.delete(row)
        audit.record(session, caller.name, "canned_reply.delete", "canned_reply", reply_id)
        session.commit()
    return render(request, "handoff/_canned.html", caller, canned=_canned(session))
