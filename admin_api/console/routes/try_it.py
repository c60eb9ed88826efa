"""Try it: what the bot would do with a question right now (``admin_api/console/try_it.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from admin_api.api.deps import StaffUser
from admin_api.console import try_it
from admin_api.console.pages import render

router = APIRouter(prefix="/try")


@router.get("", response_class=HTMLResponse)
def try_page(request: Request, caller: StaffUser) -> HTMLResponse:
    try_it.live_retriever().start_in_background()  # warm it while staff type
    return render(request, "try/page.html", caller)


@router.post("", response_class=HTMLResponse)
async def try_question(request: Request, caller: StaffUser,
                       text: str = Form(..., min_length=1, max_length=1000)) -> HTMLResponse:
    trial = await run_in_threadpool(try_it.trial, text.strip())
    return render(request, "try/_result.html", caller, trial=trial)
