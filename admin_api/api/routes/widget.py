"""The chat widget's script (``/widget.js``), its markdown renderer (``/markdown.js``, the one
the staff console's answer preview uses) and the demo page at ``/``: a bank's help page
embedding the widget, pointed at this deployment's Rasa and admin API.

The demo page is served under a strict Content-Security-Policy (scripts and styles only from
this origin, no inline code, no ``eval``), the policy a careful bank would set: the widget
must work under it, and the browser tests check that it does.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from common.config import get_settings

router = APIRouter(tags=["widget"])
STATIC = Path(__file__).resolve().parents[2] / "static"
PAGE = STATIC / "index.html"


def _bundle(name: str) -> FileResponse:
    bundle = get_settings().widget_dir / name
    if not bundle.is_file():
        raise HTTPException(404, f"the widget is not built ({bundle} is missing): run "
                                 "`make setup`, which builds it with Node.js and npm")
    return FileResponse(bundle, media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})


@router.get("/widget.js", include_in_schema=False)
def widget_script() -> FileResponse:
    return _bundle("widget.js")


@router.get("/markdown.js", include_in_schema=False)
def markdown_script() -> FileResponse:
    return _bundle("markdown.js")


@router.get("/demo.css", include_in_schema=False)
def demo_styles() -> FileResponse:
    return FileResponse(STATIC / "demo.css", media_type="text/css",
                        headers={"Cache-Control": "no-cache"})


def content_security_policy(rasa_url: str) -> str:
    """The demo page's policy: the widget reaches Rasa (polling and websocket) and this API."""
    parts = urlsplit(rasa_url)
    secure = parts.scheme == "https"
    rasa = f"{parts.scheme}://{parts.netloc}"
    socket = f"{'wss' if secure else 'ws'}://{parts.netloc}"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            f"connect-src 'self' {rasa} {socket}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def demo_page() -> HTMLResponse:
    settings = get_settings()
    tag = (f'<script src="/widget.js" data-socket-url="{html.escape(settings.public_rasa_url)}"'
           ' data-api-url=""></script>')
    page = PAGE.read_text(encoding="utf-8").replace("<!--HELPDESK_WIDGET-->", tag)
    return HTMLResponse(page, headers={
        "Cache-Control": "no-store",
        "Content-Security-Policy": content_security_policy(settings.public_rasa_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })
