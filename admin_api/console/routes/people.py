"""People and their tokens (admins): add people, change roles, deactivate, issue a token (shown
once) and revoke one; the last active admin stays. The writes are the API's own routes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse
from sqlmodel import select

from admin_api.api.deps import AdminUser, SessionDep, get_user
from admin_api.api.paging import DB_ID_MAX, Paging
from admin_api.api.routes import users as api
from admin_api.console.pages import is_htmx, notice, render
from admin_api.models import (
    _NAME_PATTERN,
    ApiToken,
    Role,
    TokenCreate,
    User,
    UserCreate,
    UserUpdate,
)

router = APIRouter(prefix="/people")


def _tokens(session: SessionDep, user_id: int) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).where(ApiToken.user_id == user_id)
                             .order_by(ApiToken.id.desc())).all())  # type: ignore[union-attr]


@router.get("", response_class=HTMLResponse)
def people_page(request: Request, session: SessionDep, caller: AdminUser,
                paging: Paging = Depends()) -> HTMLResponse:
    page = api.list_users(sort="name", paging=paging, session=session, _=caller)
    template = "people/_list.html" if is_htmx(request) else "people/page.html"
    return render(request, template, caller, page=page, roles=[r.value for r in Role])


@router.post("", response_class=HTMLResponse)
def add_person(request: Request, session: SessionDep, caller: AdminUser,
               name: str = Form(..., min_length=1, max_length=64, regex=_NAME_PATTERN),
               role: Role = Form(...)) -> HTMLResponse:
    user = api.create_user(body=UserCreate(name=name, role=role), session=session,
                           caller=caller)
    return notice(request, f"Added {user.name} ({user.role}). Issue them a token below.",
                  headers={"HX-Trigger": "people-changed"})


@router.get("/{user_id}", response_class=HTMLResponse)
def person_page(request: Request, session: SessionDep, caller: AdminUser,
                user_id: int = api.UserId) -> HTMLResponse:
    person = get_user(session, user_id)
    return render(request, "people/person.html", caller, person=person,
                  tokens=_tokens(session, user_id), roles=[r.value for r in Role])


@router.post("/{user_id}", response_class=HTMLResponse)
def change_person(request: Request, session: SessionDep, caller: AdminUser,
                  user_id: int = api.UserId, role: Role = Form(...),
                  active: bool = Form(False)) -> HTMLResponse:
    user: User = api.update_user(body=UserUpdate(role=role, active=active), user_id=user_id,
                                 session=session, caller=caller)
    state = "active" if user.active else "deactivated: their tokens and sessions stop working"
    return notice(request, f"{user.name} is {user.role}, {state}.")


@router.post("/{user_id}/tokens", response_class=HTMLResponse)
def issue_token(request: Request, session: SessionDep, caller: AdminUser,
                user_id: int = api.UserId,
                name: str = Form("console", min_length=1, max_length=64, regex=_NAME_PATTERN),
                expires_in_days: int | None = Form(90, ge=1, le=3650)) -> HTMLResponse:
    issued = api.create_token(body=TokenCreate(name=name, expires_in_days=expires_in_days),
                              user_id=user_id, session=session, caller=caller)
    return render(request, "people/_issued.html", caller, issued=issued,
                  headers={"HX-Trigger": "tokens-changed"})


@router.get("/{user_id}/tokens", response_class=HTMLResponse)
def token_list(request: Request, session: SessionDep, caller: AdminUser,
               user_id: int = api.UserId) -> HTMLResponse:
    get_user(session, user_id)
    return render(request, "people/_tokens.html", caller, tokens=_tokens(session, user_id))


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke(request: Request, session: SessionDep, caller: AdminUser,
           token_id: int = Path(..., ge=1, le=DB_ID_MAX)) -> HTMLResponse:
    api.revoke_token(token_id=token_id, session=session, caller=caller)
    return notice(request, f"Token {token_id} revoked: it, and the console sessions signed in "
                           "with it, stopped working.", headers={"HX-Trigger": "tokens-changed"})
