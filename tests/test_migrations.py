"""Alembic migrations upgrade from empty and downgrade cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlmodel import Session, select

from admin_api import crud, migrate
from admin_api.core.db import get_engine
from admin_api.models import Answer, Meta
from retrieval.answers import AnswerData
from tests.conftest import PROJECT_ROOT


def _tables(url: str) -> set[str]:
    return set(inspect(get_engine(url)).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_then_downgrade_to_base(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert _tables(database_url) == {"answer", "feedback", "meta"}
    columns = {c["name"] for c in inspect(get_engine(database_url)).get_columns("answer")}
    assert {"id", "intent", "title", "body", "questions", "tags", "status"} <= columns
    migrate.downgrade(database_url, "base")
    assert _tables(database_url) == set()
    migrate.upgrade(database_url)  # and back up again from the emptied database
    assert _tables(database_url) == {"answer", "feedback", "meta"}


def test_seed_imports_once_and_never_again(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert migrate.seed_answers(database_url, PROJECT_ROOT / "data" / "answers") == 80
    with Session(get_engine(database_url)) as session:
        answer = session.get(Answer, 105)
        assert answer is not None and answer.intent == "lost_or_stolen_card"
        assert len(answer.questions) == 3 and "security" in answer.tags
        assert session.get(Meta, migrate.SEEDED_KEY) is not None
        for row in session.exec(select(Answer)).all():  # the database is now the live copy
            session.delete(row)
        session.commit()
    assert migrate.seed_answers(database_url, PROJECT_ROOT / "data" / "answers") == 0
    with Session(get_engine(database_url)) as session:
        assert session.exec(select(Answer)).all() == []


def test_ids_assigned_after_seeding_do_not_collide(database_url: str) -> None:
    migrate.upgrade(database_url)
    migrate.seed_answers(database_url, PROJECT_ROOT / "data" / "answers")
    with Session(get_engine(database_url)) as session:
        fresh = Answer(title="New answer", body="Written by staff today.", status="draft")
        session.add(fresh)
        session.commit()
        assert fresh.id is not None and fresh.id > 903


def test_insert_keeps_explicit_ids(database_url: str) -> None:
    migrate.upgrade(database_url)
    with Session(get_engine(database_url)) as session:
        crud.create_answers(
            session, [AnswerData(id=4242, title="Hours", body="We are open daily.")]
        )
        session.commit()
        assert session.get(Answer, 4242).title == "Hours"
