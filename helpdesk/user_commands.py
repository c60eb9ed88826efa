"""``helpdesk users ...``: people and API tokens of the admin API, from the command line."""

from __future__ import annotations

import typer

users_app = typer.Typer(help="People and API tokens of the admin API.", no_args_is_help=True)


@users_app.command("create")
def create(
    name: str = typer.Argument(..., help="Login name (letters, digits, _ . @ -)."),
    role: str = typer.Option("staff", help="admin or staff."),
    expires_in_days: int = typer.Option(90, help="Token lifetime in days; 0: never expires."),
) -> None:
    """Create a user and print their first API token (shown this once)."""
    from pydantic import ValidationError
    from sqlmodel import Session, select

    from admin_api.core import security
    from admin_api.models import User, UserCreate
    from common import audit
    from common.db import get_engine

    try:
        body = UserCreate(name=name, role=role)  # type: ignore[arg-type]
    except ValidationError as error:
        typer.secho(f"Error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    with Session(get_engine()) as session:
        if session.exec(select(User).where(User.name == body.name)).first() is not None:
            typer.secho(f"Error: a user named {name!r} already exists", fg=typer.colors.RED,
                        err=True)
            raise typer.Exit(1)
        user = security.create_user(session, body.name, body.role)
        _, secret = security.issue_token(session, user, "cli", expires_in_days or None)
        audit.record(session, "cli", "user.create", "user", user.id, role=body.role.value)
        session.commit()
    typer.echo(f"Created {body.role.value} {name!r}. API token (shown once, keep it safe):")
    typer.echo(secret)


@users_app.command("list")
def list_users() -> None:
    """Everyone who can use the admin API."""
    from sqlmodel import Session, select

    from admin_api.models import User
    from common.db import get_engine

    with Session(get_engine()) as session:
        for user in session.exec(select(User).order_by(User.id)).all():
            state = "" if user.active else "  (deactivated)"
            typer.echo(f"{user.id:>4}  {user.name:<24} {user.role}{state}")
