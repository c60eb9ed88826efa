"""The chat widget's script (``/widget.js``) and the demo page at ``/``: a bank's help page
embedding the widget, pointed at this deployment's Rasa and admin API."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from admin_api.core.config import get_settings

router = APIRouter(tags=["widget"])
PAGE = Path(__file__).resolve().parents[2] / "static" / "index.html"


@router.get("/widget.js", include_in_schema=False)
def widget_script() -> FileResponse:
    bundle = get_settings().widget_dir / "widget.js"
    if not bundle.is_file():
        raise HTTPException(404, f"the widget is not built ({bundle} is missing): run "
                                 "`make setup`, which builds it with Node.js and npm")
    return FileResponse(bundle, media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def demo_page() -> HTMLResponse:
    settings = get_settings()
    tag = (f'<script src="/widget.js" data-socket-url="{html.escape(settings.public_rasa_url)}"'
           ' data-api-url=""></script>')
    page = PAGE.read_text(encoding="utf-8").replace("<!--HELPDESK_WIDGET-->", tag)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
