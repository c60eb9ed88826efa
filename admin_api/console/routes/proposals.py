"""Proposed answers: topics customers ask about that the bot does not answer, each turned
into a draft answer or attached to an existing one in one step."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func
from sqlmodel import select
from starlette.datastructures import FormData

from admin_api import proposals
from admin_api.api.deps import SessionDep, StaffUser
from admin_api.api.paging import Paging
from admin_api.console.forms import blank
from admin_api.console.pages import is_htmx, notice, render
from admin_api.models import AnswerProposal, Meta, ProposalStatus
from common import audit
from common.config import get_settings
from common.errors import Invalid

router = APIRouter(prefix="/proposals")
ProposalId = Path(..., ge=1, le=2**31 - 1)


@router.get("", response_class=HTMLResponse)
def proposals_page(request: Request, session: SessionDep, caller: StaffUser,
                   paging: Paging = Depends()) -> HTMLResponse:
    query = select(AnswerProposal).where(AnswerProposal.status == ProposalStatus.open.value)
    total = session.exec(select(func.count())  # type: ignore[call-overload]
                         .select_from(query.subquery())).one()
    rows = session.exec(query.order_by(AnswerProposal.size.desc(),  # type: ignore[attr-defined]
                                       AnswerProposal.id)
                        .offset(paging.offset).limit(paging.limit)).all()
    seen = session.get(Meta, proposals.SEEN_KEY)
    page = {"items": rows, "total": total, "limit": paging.limit, "offset": paging.offset}
    template = "proposals/_list.html" if is_htmx(request) else "proposals/page.html"
    return render(request, template, caller, page=page, computed=seen is not None,
                  pending=proposals.refresh_pending(session),
                  min_new=get_settings().proposal_min_new)


@router.post("/refresh", response_class=HTMLResponse)
def refresh(request: Request, session: SessionDep, caller: StaffUser) -> HTMLResponse:
    """Asks the background worker; the clustering never runs inside a request."""
    proposals.request_refresh(session)
    audit.record(session, caller.name, "proposals.refresh", "answer_proposal", None)
    session.commit()
    return notice(request, "Recomputing in the background: the list refreshes by itself "
                           "when it is done.", headers={"HX-Trigger": "proposals-requested"})


async def _chosen(request: Request) -> tuple[FormData, list[str]]:
    form = await request.form()
    return form, [str(v) for v in form.getlist("question")]


@router.post("/{proposal_id}/draft", response_class=HTMLResponse)
async def draft(request: Request, session: SessionDep, caller: StaffUser,
                proposal_id: int = ProposalId) -> Response:
    form, chosen = await _chosen(request)
    answer = proposals.make_draft(session, proposal_id, str(form.get("title") or ""),
                                  str(form.get("body") or ""), blank(str(form.get("intent") or "")),
                                  chosen, caller.name)
    audit.record(session, caller.name, "proposal.draft", "answer_proposal", proposal_id,
                 answer_id=answer.id)
    session.commit()
    return notice(request, f"Draft answer {answer.id} created.",
                  headers={"HX-Redirect": f"/console/answers/{answer.id}"})


@router.post("/{proposal_id}/attach", response_class=HTMLResponse)
async def attach(request: Request, session: SessionDep, caller: StaffUser,
                 proposal_id: int = ProposalId) -> Response:
    form, chosen = await _chosen(request)
    raw = blank(str(form.get("answer_id") or ""))
    if raw is None or not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        raise Invalid("answer_id: give the number of an existing answer")
    answer, added = proposals.attach(session, proposal_id, int(raw), chosen, caller.name)
    audit.record(session, caller.name, "proposal.attach", "answer_proposal", proposal_id,
                 answer_id=answer.id, added=added)
    session.commit()
    return notice(request, f"Added {added} question(s) to answer {answer.id} ({answer.title}).",
                  headers={"HX-Trigger": "proposals-changed"})


@router.post("/{proposal_id}/dismiss", response_class=HTMLResponse)
def dismiss(request: Request, session: SessionDep, caller: StaffUser,
            proposal_id: int = ProposalId) -> Response:
    proposals.dismiss(session, proposal_id, caller.name)
    audit.record(session, caller.name, "proposal.dismiss", "answer_proposal", proposal_id)
    session.commit()
    return notice(request, f"Proposal {proposal_id} dismissed.",
                  headers={"HX-Trigger": "proposals-changed"})
