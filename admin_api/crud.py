"""Answer writes, and the changes feed that the retriever polls.

Every write goes through here so that it takes a new value of the answer clock in its own
transaction: the feed (``answer_changes``) then reports every create, edit, publish, unpublish
and delete exactly once, in commit order, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from sqlalchemy import text, update
from sqlmodel import Session, select

from admin_api.models import Answer, AnswerClock, AnswerRead, AnswerTombstone, utcnow
from retrieval.answers import AnswerData, AnswerStatus

CHANGES_PAGE = 500


def tick(session: Session) -> int:
    """The next clock value; the row stays locked until the caller commits."""
    session.execute(update(AnswerClock).where(AnswerClock.id == 1)
                    .values(version=AnswerClock.version + 1))
    return int(session.execute(select(AnswerClock.version).where(AnswerClock.id == 1)).scalar_one())


def current_version(session: Session) -> int:
    value = session.execute(select(AnswerClock.version).where(AnswerClock.id == 1)).scalar()
    return int(value or 0)


def _fields(data: AnswerData) -> dict:
    fields = data.dict(exclude={"id"})
    fields["status"] = data.status.value
    return fields


def create_answers(session: Session, answers: list[AnswerData]) -> list[Answer]:
    """Insert answers (keeping explicit ids) under one clock value; the caller commits."""
    version, now = tick(session), utcnow()
    rows = []
    for data in answers:
        row = Answer(id=data.id, **_fields(data), created_at=now, updated_at=now, version=version)
        session.add(row)
        rows.append(row)
        if data.id is not None:
            tombstone = session.get(AnswerTombstone, data.id)
            if tombstone is not None:
                session.delete(tombstone)
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            "SELECT setval(pg_get_serial_sequence('answer', 'id'), "
            "COALESCE((SELECT MAX(id) FROM answer), 0) + 1, false)"
        ))
    return rows


def update_answer(session: Session, answer: Answer, data: AnswerData) -> Answer:
    for key, value in _fields(data).items():
        setattr(answer, key, value)
    answer.updated_at, answer.version = utcnow(), tick(session)
    session.add(answer)
    return answer


def set_status(session: Session, answer: Answer, status: AnswerStatus) -> Answer:
    answer.status = status.value
    answer.updated_at, answer.version = utcnow(), tick(session)
    session.add(answer)
    return answer


def delete_answer(session: Session, answer: Answer) -> None:
    version = tick(session)
    assert answer.id is not None
    tombstone = session.get(AnswerTombstone, answer.id) or AnswerTombstone(answer_id=answer.id,
                                                                           version=version)
    tombstone.version, tombstone.deleted_at = version, utcnow()
    session.add(tombstone)
    session.delete(answer)


def answer_changes(session: Session, since: int, limit: int = CHANGES_PAGE) -> dict:
    """Answers written and deleted after ``since``, whole versions at a time, oldest first.

    A page never splits one version (a seed import writes many answers under one), so the
    caller resumes from the page's ``version``; ``more`` says that another page follows.
    """
    versions = sorted(
        list(session.exec(select(Answer.version).where(Answer.version > since)
                          .order_by(Answer.version).limit(limit + 1)).all())
        + list(session.exec(select(AnswerTombstone.version).where(AnswerTombstone.version > since)
                            .order_by(AnswerTombstone.version).limit(limit + 1)).all())
    )
    more = len(versions) > limit
    cutoff = versions[limit - 1] if more else current_version(session)
    answers = session.exec(select(Answer).where(Answer.version > since, Answer.version <= cutoff)
                           .order_by(Answer.version, Answer.id)).all()
    tombstones = session.exec(
        select(AnswerTombstone).where(AnswerTombstone.version > since,
                                      AnswerTombstone.version <= cutoff)
    ).all()
    if more:
        more = session.exec(select(Answer.id).where(Answer.version > cutoff).limit(1)).first() \
            is not None or session.exec(select(AnswerTombstone.answer_id)
                                        .where(AnswerTombstone.version > cutoff).limit(1)
                                        ).first() is not None
    events = sorted([(a.version, a.id, a) for a in answers]
                    + [(t.version, t.answer_id, None) for t in tombstones], key=lambda e: e[:2])
    upserts, removed = [], []
    for _, answer_id, row in events:
        if row is not None and row.status == AnswerStatus.published.value:
            upserts.append(AnswerRead.from_orm(row))
        else:
            removed.append(answer_id)
    return {"version": cutoff, "upserts": upserts, "removed": removed, "more": more}
