"""All console pages under ``/console``, kept out of the OpenAPI document (they are HTML for
people; the API they call is documented there)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from admin_api.console.pages import PREFIX
from admin_api.console.routes import (
    answers,
    assets,
    audit,
    auth,
    conversations,
    dashboard,
    handoff,
    inbox,
    models,
    people,
    proposals,
    retraining,
    simulator,
    training,
    try_it,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/answers", status_code=303)


for module in (auth, assets, dashboard, answers, try_it, inbox, proposals, handoff, training,
               conversations, models, retraining, simulator, people, audit):
    router.include_router(module.router)
