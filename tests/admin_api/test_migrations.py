"""Alembic migrations upgrade from empty and downgrade cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import Session, SQLModel, select

from admin_api import crud, migrate
from admin_api.models import Answer, AnswerRevision, Meta
from common.db import get_engine
from retrieval.answers import AnswerData, load_answers_dir
from tests.conftest import PROJECT_ROOT

TABLES = {"answer", "answer_clock", "answer_tombstone", "feedback", "meta", "user", "api_token",
          "answer_revision", "review_item", "training_example", "audit_log",
          "job", "model_version", "console_session", "handoff_claim", "canned_reply",
          "review_repeat", "answer_proposal", "turn_fact", "threshold_setting", "replay_turn",
          "lease"}


def _tables(url: str) -> set[str]:
    return set(inspect(get_engine(url)).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_then_downgrade_to_base(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert _tables(database_url) == TABLES
    columns = {c["name"] for c in inspect(get_engine(database_url)).get_columns("answer")}
    assert {"id", "intent", "title", "body", "questions", "tags", "status"} <= columns
    migrate.downgrade(database_url, "base")
    assert _tables(database_url) == set()
    migrate.upgrade(database_url)  # and back up again from the emptied database
    assert _tables(database_url) == TABLES


def test_migrations_match_the_models(database_url: str) -> None:
    migrate.upgrade(database_url)
    with get_engine(database_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_answer_versions_survive_an_upgrade_of_existing_data(database_url: str) -> None:
    migrate.upgrade(database_url, "0001")
    with get_engine(database_url).begin() as connection:
        connection.execute(text(
            "INSERT INTO answer (id, title, body, questions, tags, status, created_at, updated_at)"
            " VALUES (7, 'Hours', 'Open daily.', '[]', '[]', 'published', :now, :now)"
        ), {"now": "2026-11-01 00:00:00"})
    migrate.upgrade(database_url)
    with Session(get_engine(database_url)) as session:
        changes = crud.answer_changes(session, 0)
        assert [a.id for a in changes["upserts"]] == [7]  # rows from before 0002 are in the feed
        assert changes["version"] == crud.current_version(session) == 1
        [revision] = session.exec(select(AnswerRevision)).all()  # history starts at the row
        assert (revision.answer_id, revision.revision, revision.data["title"]) == (7, 1, "Hours")


def test_seed_imports_once_and_never_again(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert migrate.seed_answers(database_url, PROJECT_ROOT / "data" / "answers") == 80
    with Session(get_engine(database_url)) as session:
        answer = session.get(Answer, 105)
        assert answer is not None and answer.intent == "lost_or_stolen_card"
        seed = next(a for a in load_answers_dir(PROJECT_ROOT / "data" / "answers") if a.id == 105)
        assert answer.questions == seed.questions and len(seed.questions) >= 2
        assert "security" in answer.tags
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
