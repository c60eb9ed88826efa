"""An admin database for benchmarks: migrated, seeded with the shipped answers, and a staff
member's token, on whatever ``HELPDESK_DATABASE_URL`` the benchmark set."""

from __future__ import annotations


def migrated_with_staff_token() -> str:
    """Migrate, import the curated answers, and return a new staff member's API token."""
    from sqlmodel import Session

    from admin_api import migrate
    from admin_api.core import security
    from admin_api.models import Role
    from common.db import get_engine

    migrate.upgrade()
    migrate.seed_answers()
    with Session(get_engine()) as session:
        user = security.create_user(session, "bench", Role.staff)
        _, secret = security.issue_token(session, user)
        session.commit()
    return secret
