"""The audit log (admins): every write, who made it and when, filtered in the URL."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from admin_api.api.deps import AdminUser, SessionDep
from admin_api.api.paging import Paging, Window
from admin_api.api.routes import audit as api
from admin_api.console.forms import blank, day
from admin_api.console.pages import is_htmx, render

router = APIRouter(prefix="/audit")


@router.get("", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, caller: AdminUser,
               actor: str | None = Query(None, max_length=64),
               action: str | None = Query(None, max_length=64),
               entity_id: str | None = Query(None, max_length=128),
               since: str | None = Query(None, max_length=10),
               until: str | None = Query(None, max_length=10),
               paging: Paging = Depends()) -> HTMLResponse:
    filters = {"actor": blank(actor), "action": blank(action), "entity_id": blank(entity_id),
               "since": blank(since), "until": blank(until)}
    page = api.list_audit(actor=filters["actor"], action=filters["action"],
                          entity_id=filters["entity_id"],
                          window=Window(since=day(since, "since"), until=day(until, "until")),
                          sort="-created_at", paging=paging, session=session, _=caller)
    base = "/console/audit?" + urlencode({k: v for k, v in filters.items() if v})
    template = "audit/_list.html" if is_htmx(request) else "audit/page.html"
    return render(request, template, caller, page=page, filters=filters, base=base)
