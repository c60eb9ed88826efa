"""``helpdesk db upgrade``: apply migrations, then seed the answers once.

The YAML in ``data/answers`` is imported only on the first upgrade of a database; from then on
the database is the live copy, so deleting every answer does not bring the seed back.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlmodel import Session, select

from admin_api import crud
from admin_api.models import Answer, Meta, utcnow
from common.config import get_settings
from common.db import get_engine
from retrieval.answers import load_answers_dir

SEEDED_KEY = "answers_seeded"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url or get_settings().database_url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url or get_settings().database_url), revision)


def seed_answers(url: str | None = None, answers_dir: Path | None = None) -> int:
    """Import the seed answers if this database was never seeded; returns how many."""
    answers_dir = answers_dir or get_settings().data_dir / "answers"
    with Session(get_engine(url or get_settings().database_url)) as session:
        if session.get(Meta, SEEDED_KEY) is not None:
            return 0
        answers = load_answers_dir(answers_dir)
        existing = set(session.exec(select(Answer.id)).all())
        fresh = [a for a in answers if a.id not in existing]
        crud.create_answers(session, fresh)
        session.add(Meta(key=SEEDED_KEY, value=utcnow().isoformat()))
        session.commit()
        return len(fresh)
