"""Training examples: pending ones (written by staff, corrected in the inbox, confirmed by
customers) filtered by source and intent, approved or rejected in bulk."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from admin_api.api.deps import SessionDep, StaffUser
from admin_api.api.paging import Paging
from admin_api.api.routes import training as api
from admin_api.console.forms import blank, choice
from admin_api.console.pages import is_htmx, notice, render
from admin_api.models import ExampleBulkReview, ExampleSource, ExampleStatus

router = APIRouter(prefix="/training")


@router.get("", response_class=HTMLResponse)
def examples_page(request: Request, session: SessionDep, caller: StaffUser,
                  status: str | None = Query("pending", max_length=20),
                  source: str | None = Query(None, max_length=20),
                  intent: str | None = Query(None, max_length=100),
                  paging: Paging = Depends()) -> HTMLResponse:
    filters = {"status": blank(status), "source": blank(source), "intent": blank(intent)}
    page = api.list_examples(status_=choice(ExampleStatus, status, "status"),
                             intent=filters["intent"],
                             source=choice(ExampleSource, source, "source"),
                             sort="-created_at", paging=paging, session=session, _=caller)
    template = "training/_list.html" if is_htmx(request) else "training/page.html"
    return render(request, template, caller, page=page, filters=filters,
                  statuses=[s.value for s in ExampleStatus],
                  sources=[s.value for s in ExampleSource])


@router.post("/review", response_class=HTMLResponse)
async def review(request: Request, session: SessionDep, caller: StaffUser) -> HTMLResponse:
    form = await request.form()
    ids = [int(str(v)) for v in form.getlist("example") if str(v).isdigit()]
    target = choice(ExampleStatus, str(form.get("decision") or ""), "decision")
    if not ids:
        return notice(request, "Select at least one example.", status_code=422, kind="error")
    if target not in (ExampleStatus.approved, ExampleStatus.rejected):
        return notice(request, "decision: approve or reject", status_code=422, kind="error")
    result = api.review_examples(body=ExampleBulkReview(ids=ids, status=target),
                                 session=session, caller=caller)
    message = f"{target.value.capitalize()} {len(result.changed)} example(s)."
    if result.skipped:
        message += " Skipped: " + "; ".join(f"{k}: {v}" for k, v in result.skipped.items())
    return notice(request, message, headers={"HX-Trigger": "examples-changed"})
