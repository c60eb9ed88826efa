"""Answer writes, their revision history, and the changes feed that the retriever polls.

Every write goes through here so that it takes a new value of the answer clock in its own
transaction: the feed (``answer_changes``) then reports every create, edit, publish, unpublish
and delete exactly once, in commit order, on SQLite and PostgreSQL alike. Every write also
records a revision (who, when, which fields, the whole answer after it).
"""

from __future__ import annotations

from sqlalchemy import func, text, update
from sqlmodel import Session, select

from admin_api import thresholds
from admin_api.models import (
    Answer,
    AnswerClock,
    AnswerRead,
    AnswerRevision,
    AnswerTombstone,
    utcnow,
)
from retrieval.answers import AnswerData, AnswerStatus

CHANGES_PAGE = 500
CONTENT_FIELDS = ("intent", "title", "body", "questions", "tags")


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


def _snapshot(answer: Answer) -> dict:
    data = answer.to_data().dict()
    data["status"] = answer.status
    return data


def _record(session: Session, answer: Answer, action: str, changed: list[str],
            author: str | None) -> None:
    assert answer.id is not None
    session.add(AnswerRevision(answer_id=answer.id, revision=answer.revision, action=action,
                               changed=changed, data=_snapshot(answer), author=author,
                               created_at=answer.updated_at))


def last_revision(session: Session, answer_id: int) -> int:
    value = session.execute(select(func.max(AnswerRevision.revision))  # type: ignore[call-overload]
                            .where(AnswerRevision.answer_id == answer_id)).scalar()
    return int(value or 0)


def create_answers(session: Session, answers: list[AnswerData],
                   author: str | None = None) -> list[Answer]:
    """Insert answers (keeping explicit ids) under one clock value; the caller commits.

    An id that belonged to a deleted answer continues that answer's revision history.
    """
    version, now = tick(session), utcnow()
    rows = []
    for data in answers:
        row = Answer(id=data.id, **_fields(data), created_at=now, updated_at=now, version=version)
        if data.id is not None:
            row.revision = last_revision(session, data.id) + 1
            tombstone = session.get(AnswerTombstone, data.id)
            if tombstone is not None:
                session.delete(tombstone)
        session.add(row)
        rows.append(row)
    session.flush()
    for row in rows:
        _record(session, row, "create", [], author)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            "SELECT setval(pg_get_serial_sequence('answer', 'id'), "
            "COALESCE((SELECT MAX(id) FROM answer), 0) + 1, false)"
        ))
    return rows


def _write(session: Session, answer: Answer, action: str, changed: list[str],
           author: str | None) -> Answer:
    answer.updated_at, answer.version = utcnow(), tick(session)
    answer.revision += 1
    session.add(answer)
    _record(session, answer, action, changed, author)
    return answer


def update_answer(session: Session, answer: Answer, changes: dict,
                  author: str | None = None, action: str = "update") -> Answer:
    """Apply ``changes`` (field -> new value, already validated); only real changes count."""
    changed = []
    for key, value in changes.items():
        value = value.value if isinstance(value, AnswerStatus) else value
        if getattr(answer, key) != value:
            setattr(answer, key, value)
            changed.append(key)
    if not changed:
        return answer
    return _write(session, answer, action, changed, author)


def set_status(session: Session, answer: Answer, status: AnswerStatus,
               author: str | None = None) -> Answer:
    if answer.status == status.value:
        return answer
    answer.status = status
    action = "publish" if status is AnswerStatus.published else "unpublish"
    return _write(session, answer, action, ["status"], author)


def delete_answer(session: Session, answer: Answer, author: str | None = None) -> None:
    version = tick(session)
    assert answer.id is not None
    tombstone = session.get(AnswerTombstone, answer.id) or AnswerTombstone(answer_id=answer.id,
                                                                           version=version)
    tombstone.version, tombstone.deleted_at = version, utcnow()
    session.add(tombstone)
    answer.revision += 1
    answer.updated_at = tombstone.deleted_at
    _record(session, answer, "delete", [], author)
    session.delete(answer)


def restore_revision(session: Session, answer_id: int, revision: AnswerRevision,
                     author: str | None = None) -> Answer:
    """Bring back a revision's content. The current status is kept (restoring never
    publishes by surprise); a deleted answer comes back as a draft under its old id."""
    content = {k: revision.data.get(k) for k in CONTENT_FIELDS}
    answer = session.get(Answer, answer_id)
    if answer is None:
        data = AnswerData(id=answer_id, **content, status=AnswerStatus.draft)  # type: ignore[arg-type]
        [answer] = create_answers(session, [data], author)
        answer_revision = session.exec(select(AnswerRevision).where(
            AnswerRevision.answer_id == answer_id,
            AnswerRevision.revision == answer.revision)).one()
        answer_revision.action = "restore"
        answer_revision.changed = [f"from revision {revision.revision}"]
        return answer
    changes = {k: v for k, v in content.items() if getattr(answer, k) != v}
    answer = update_answer(session, answer, changes, author, action="restore")
    return answer


def answer_changes(session: Session, since: int, limit: int = CHANGES_PAGE) -> dict:
    """Answers written and deleted after ``since``, whole versions at a time, oldest first,
    with the decision thresholds in force (``admin_api.thresholds``).

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
    return {"version": cutoff, "upserts": upserts, "removed": removed, "more": more,
            **thresholds.feed_fields(session)}
