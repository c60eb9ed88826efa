"""The demo page at ``/``: a bank page with the chat widget, pointed at this deployment's Rasa."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from admin_api.core.config import get_settings

router = APIRouter(tags=["widget"])
PAGE = Path(__file__).resolve().parents[2] / "static" / "index.html"


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def demo_page() -> HTMLResponse:
    settings = get_settings()
    config = json.dumps({"rasaUrl": settings.public_rasa_url, "feedbackUrl": "/api/v1/feedback"})
    # "</" cannot appear inside the JSON, so the config cannot close the <script> element.
    html = PAGE.read_text(encoding="utf-8").replace(
        "__HELPDESK_CONFIG__", config.replace("</", "<\\/")
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
