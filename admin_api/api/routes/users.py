"""People and their API tokens. Only admins manage them; anyone can see who they are."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from sqlmodel import Session, select

from admin_api.api.deps import (
    AdminUser,
    CurrentUser,
    SessionDep,
    get_user,
)
from admin_api.api.paging import DB_ID_MAX, Page, Paging, paginate, sort_param
from admin_api.core import security
from admin_api.models import (
    ApiToken,
    Role,
    TokenCreate,
    TokenIssued,
    TokenRead,
    User,
    UserCreate,
    UserRead,
    UserUpdate,
    utcnow,
)
from common import audit

router = APIRouter(tags=["users"])
UserId = Path(..., ge=1, le=DB_ID_MAX)


@router.get("/users/me", response_model=UserRead)
def me(*, caller: CurrentUser, session: SessionDep) -> User:
    return get_user(session, caller.user_id)


@router.get("/users", response_model=Page[UserRead])
def list_users(*, sort: str = sort_param("id", ("id", "name", "created_at")),
               paging: Paging = Depends(), session: SessionDep,
               _: AdminUser) -> dict:
    return paginate(session, select(User), paging, User, sort)


@router.post("/users", response_model=UserRead, status_code=201,
             responses={409: {"description": "A user of that name already exists"}})
def create_user(*, body: UserCreate, session: SessionDep,
                caller: AdminUser) -> User:
    if session.exec(select(User).where(User.name == body.name)).first() is not None:
        raise HTTPException(409, f"a user named {body.name!r} already exists")
    user = security.create_user(session, body.name, body.role)
    audit.record(session, caller.name, "user.create", "user", user.id, role=body.role.value)
    session.commit()
    session.refresh(user)
    return user


def _admins_left(session: Session, without: int) -> int:
    return len(session.exec(select(User.id).where(User.role == Role.admin.value,
                                                  User.active.is_(True),  # type: ignore[attr-defined]
                                                  User.id != without)).all())


@router.patch("/users/{user_id}", response_model=UserRead,
              responses={409: {"description": "This would leave no active admin"}})
def update_user(*, body: UserUpdate, user_id: int = UserId, session: SessionDep,
                caller: AdminUser) -> User:
    """Change a role or (de)activate someone; the last active admin cannot be removed."""
    user = get_user(session, user_id)
    demoting = (body.role is not None and body.role is not Role.admin) or body.active is False
    if demoting and user.role == Role.admin.value and _admins_left(session, user_id) == 0:
        raise HTTPException(409, "this is the last active admin; make another admin first")
    changes = body.dict(exclude_unset=True)
    for key, value in changes.items():
        setattr(user, key, value.value if isinstance(value, Role) else value)
    session.add(user)
    audit.record(session, caller.name, "user.update", "user", user_id,
                 **{k: (v.value if isinstance(v, Role) else v) for k, v in changes.items()})
    session.commit()
    session.refresh(user)
    return user


@router.get("/users/{user_id}/tokens", response_model=list[TokenRead])
def list_tokens(*, user_id: int = UserId, session: SessionDep,
                _: AdminUser) -> list[ApiToken]:
    get_user(session, user_id)
    return list(session.exec(select(ApiToken).where(ApiToken.user_id == user_id)
                             .order_by(ApiToken.id)).all())


@router.post("/users/{user_id}/tokens", response_model=TokenIssued, status_code=201)
def create_token(*, body: TokenCreate, user_id: int = UserId,
                 session: SessionDep,
                 caller: AdminUser) -> dict:
    """A new token; the secret is in this response only."""
    user = get_user(session, user_id)
    row, secret = security.issue_token(session, user, body.name, body.expires_in_days)
    audit.record(session, caller.name, "token.create", "token", row.id, user_id=user_id)
    session.commit()
    session.refresh(row)
    return {**TokenRead.from_orm(row).dict(), "token": secret}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(*, token_id: int = Path(..., ge=1, le=DB_ID_MAX),
                 session: SessionDep,
                 caller: CurrentUser) -> Response:
    """Revoke a token: admins any token, everyone their own."""
    token = session.get(ApiToken, token_id)
    if token is None or (caller.role is not Role.admin and token.user_id != caller.user_id):
        raise HTTPException(404, f"no token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit.record(session, caller.name, "token.revoke", "token", token_id)
        session.commit()
    return Response(status_code=204)
