"""The FastAPI application (``uvicorn admin_api.main:app``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from admin_api.api.limits import BodySizeLimit
from admin_api.api.routes import answers, feedback, health, widget
from admin_api.core.config import get_settings


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="Lepton Helpdesk admin API",
        version="0.1.0",
        description="Curated answers, customer feedback and the bot's operations.",
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    for module in (health, feedback, answers, widget):
        app.include_router(module.router)
    return app


app = create_app()
