"""Curated answers: public reads for the bot, and curation (behind staff auth) for people.

``/published`` and ``/changes`` are public content read by the action server over HTTP;
``/changes`` is the feed the retriever polls to stay live (see ``admin_api/crud.py``), so a
write here reaches the running bot within a second, with no retraining and no restart.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import String, cast, or_
from sqlmodel import Session, col, select

from admin_api import crud
from admin_api.api.deps import Caller, SessionDep, StaffUser
from admin_api.api.paging import DB_ID_MAX, Page, Paging, not_found, paginate, sort_param
from admin_api.models import (
    Answer,
    AnswerChanges,
    AnswerRead,
    AnswerRevision,
    AnswerRevisionRead,
    AnswerUpdate,
    ImportReport,
)
from common import audit
from common.text import INTENT_PATTERN
from retrieval.answers import (
    MAX_ANSWER_ID,
    AnswerData,
    AnswerFileError,
    AnswerStatus,
    dump_answers,
    dump_answers_csv,
    parse_answers_csv,
    parse_answers_yaml,
)

router = APIRouter(prefix="/answers", tags=["answers"])
_FORMATS = {"yaml": "application/yaml", "csv": "text/csv"}
STALE: dict[int | str, dict[str, Any]] = {
    409: {"description": "Someone saved the answer after `base_revision`: reload it"}}


@router.get("/published", response_model=list[AnswerRead])
def published_answers(
    *,
    intent: str | None = Query(None, max_length=100, pattern=INTENT_PATTERN),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
    session: SessionDep,
) -> list[Answer]:
    query = select(Answer).where(Answer.status == AnswerStatus.published.value)
    if intent is not None:
        query = query.where(Answer.intent == intent)
    return list(session.exec(query.order_by(Answer.id).offset(offset).limit(limit)).all())


@router.get("/changes", response_model=AnswerChanges)
def answer_changes(
    *,
    since: int = Query(0, ge=0, le=2**62, description="The last answers version already seen."),
    limit: int = Query(crud.CHANGES_PAGE, ge=1, le=5000),
    session: SessionDep,
) -> dict:
    """Published answers to (re)index and ids to drop, written after version ``since``."""
    return crud.answer_changes(session, since, limit)


@router.get("", response_model=Page[AnswerRead])
def list_answers(
    *,
    status_: AnswerStatus | None = Query(None, alias="status"),
    intent: str | None = Query(None, max_length=100, pattern=INTENT_PATTERN),
    tag: str | None = Query(None, max_length=50),
    q: str | None = Query(None, max_length=200, description="Words in title, body or questions."),
    sort: str = sort_param("id", ("id", "title", "intent", "status", "updated_at", "created_at")),
    paging: Paging = Depends(),
    session: SessionDep,
    _: StaffUser,
) -> dict:
    query = select(Answer)
    if status_ is not None:
        query = query.where(Answer.status == status_.value)
    if intent is not None:
        query = query.where(Answer.intent == intent)
    if tag is not None:
        query = query.where(cast(col(Answer.tags), String).contains(f'"{tag.lower()}"'))
    if q:
        for word in q.split():
            pattern = f"%{_escape_like(word)}%"
            query = query.where(or_(col(Answer.title).ilike(pattern, escape="\\"),
                                    col(Answer.body).ilike(pattern, escape="\\"),
                                    cast(col(Answer.questions), String).ilike(pattern,
                                                                             escape="\\")))
    return paginate(session, query, paging, Answer, sort)


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("/export", responses={200: {"content": {t: {} for t in _FORMATS.values()}}})
def export_answers(
    *,
    format_: str = Query("yaml", alias="format", pattern="^(yaml|csv)$"),
    status_: AnswerStatus | None = Query(None, alias="status"),
    session: SessionDep,
    _: StaffUser,
) -> Response:
    """Every answer (or those with ``status``) in the format ``import`` reads back."""
    query = select(Answer).order_by(Answer.id)
    if status_ is not None:
        query = query.where(Answer.status == status_.value)
    answers = [row.to_data() for row in session.exec(query).all()]
    content = dump_answers(answers) if format_ == "yaml" else dump_answers_csv(answers)
    return Response(content, media_type=_FORMATS[format_], headers={
        "Content-Disposition": f'attachment; filename="answers.{format_}"'})


@router.post("/import", response_model=ImportReport, openapi_extra={"requestBody": {
    "required": True, "content": {t: {"schema": {"type": "string"}} for t in _FORMATS.values()}}})
async def import_answers(
    *,
    request: Request,
    format_: str = Query("yaml", alias="format", pattern="^(yaml|csv)$"),
    session: SessionDep,
    caller: StaffUser,
) -> dict:
    """Create or update answers from a YAML or CSV file, all or nothing.

    Rows with an id update that answer (or create it under that id); rows without one are
    created. Any invalid row refuses the whole file, naming the row.
    """
    raw = await request.body()
    # Parsing, validating and writing a large file takes a while: on a worker thread, so the
    # event loop goes on serving the answers feed, the model server and everyone else.
    return await run_in_threadpool(import_answers_file, raw, format_, session, caller)


def import_answers_file(raw: bytes, format_: str, session: Session, caller: Caller) -> dict:
    try:
        content = raw.decode("utf-8-sig")
        parse = parse_answers_yaml if format_ == "yaml" else parse_answers_csv
        answers = parse(content, f"uploaded {format_}")
    except UnicodeDecodeError:
        raise HTTPException(422, "the file is not UTF-8 text") from None
    except AnswerFileError as error:
        raise HTTPException(422, str(error)) from None
    report: dict[str, list[int]] = {"created": [], "updated": [], "unchanged": []}
    fresh = []
    for data in answers:
        row = session.get(Answer, data.id) if data.id is not None else None
        if row is None:
            fresh.append(data)
            continue
        before = row.revision
        changes = data.dict(exclude={"id"})
        crud.update_answer(session, row, changes, caller.name, action="import")
        assert row.id is not None  # a stored row has its id
        report["updated" if row.revision != before else "unchanged"].append(row.id)
    rows = crud.create_answers(session, fresh, caller.name) if fresh else []
    report["created"] = [r.id for r in rows if r.id is not None]
    audit.record(session, caller.name, "answer.import", "answer", None, format=format_,
                 created=report["created"], updated=report["updated"])
    session.commit()
    return report


@router.post("", response_model=AnswerRead, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "An answer with this id already exists"}})
def create_answer(*, data: AnswerData, session: SessionDep,
                  caller: StaffUser) -> Answer:
    """A new answer (a draft unless ``status`` says published); an id is optional."""
    if data.id is not None and session.get(Answer, data.id) is not None:
        raise HTTPException(409, f"answer id {data.id} already exists")
    [row] = crud.create_answers(session, [data], caller.name)
    audit.record(session, caller.name, "answer.create", "answer", row.id, status=row.status)
    session.commit()
    session.refresh(row)
    return row


def _answer(session: Session, answer_id: int) -> Answer:
    row = session.get(Answer, answer_id)
    if row is None:
        raise not_found("answer", answer_id)
    return row


def _stale(row: Answer, base_revision: int | None) -> None:
    if base_revision is not None and base_revision != row.revision:
        raise HTTPException(409, f"answer {row.id} is at revision {row.revision}, not "
                                 f"{base_revision}: someone saved it in between; reload it")


AnswerId = Path(..., ge=1, le=MAX_ANSWER_ID)


@router.get("/{answer_id}", response_model=AnswerRead)
def read_answer(*, answer_id: int = AnswerId, session: SessionDep,
                _: StaffUser) -> Answer:
    return _answer(session, answer_id)


@router.patch("/{answer_id}", response_model=AnswerRead, responses=STALE)
def update_answer(*, edit: AnswerUpdate, answer_id: int = AnswerId,
                  session: SessionDep,
                  caller: StaffUser) -> Answer:
    """Change some fields. A published answer changes in the bot within 2 seconds."""
    row = _answer(session, answer_id)
    _stale(row, edit.base_revision)
    patch = edit.dict(exclude_unset=True, exclude={"base_revision"})
    try:
        merged = AnswerData(**{**row.to_data().dict(), **patch})
    except ValidationError as error:
        raise HTTPException(422, error.errors()) from None
    changes = {k: getattr(merged, k) for k in patch}
    crud.update_answer(session, row, changes, caller.name)
    audit.record(session, caller.name, "answer.update", "answer", answer_id,
                 revision=row.revision, fields=sorted(patch))
    session.commit()
    session.refresh(row)
    return row


@router.delete("/{answer_id}", status_code=status.HTTP_204_NO_CONTENT, responses=STALE)
def delete_answer(*, answer_id: int = AnswerId,
                  base_revision: int | None = Query(None, ge=1, le=2**62),
                  session: SessionDep,
                  caller: StaffUser) -> Response:
    """Delete an answer; its revisions stay, so it can be restored."""
    row = _answer(session, answer_id)
    _stale(row, base_revision)
    crud.delete_answer(session, row, caller.name)
    audit.record(session, caller.name, "answer.delete", "answer", answer_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _set_status(answer_id: int, target: AnswerStatus, session: Session, caller: Caller) -> Answer:
    row = _answer(session, answer_id)
    crud.set_status(session, row, target, caller.name)
    action = "publish" if target is AnswerStatus.published else "unpublish"
    audit.record(session, caller.name, f"answer.{action}", "answer", answer_id)
    session.commit()
    session.refresh(row)
    return row


@router.post("/{answer_id}/publish", response_model=AnswerRead)
def publish_answer(*, answer_id: int = AnswerId, session: SessionDep,
                   caller: StaffUser) -> Answer:
    """Make the answer findable by the bot (within 2 seconds)."""
    return _set_status(answer_id, AnswerStatus.published, session, caller)


@router.post("/{answer_id}/unpublish", response_model=AnswerRead)
def unpublish_answer(*, answer_id: int = AnswerId, session: SessionDep,
                     caller: StaffUser) -> Answer:
    """Take the answer out of the bot (within 2 seconds); it stays here as a draft."""
    return _set_status(answer_id, AnswerStatus.draft, session, caller)


@router.get("/{answer_id}/revisions", response_model=Page[AnswerRevisionRead])
def answer_revisions(*, answer_id: int = AnswerId, paging: Paging = Depends(),
                     session: SessionDep,
                     _: StaffUser) -> dict:
    """Newest first; a deleted answer's history is still here."""
    query = select(AnswerRevision).where(AnswerRevision.answer_id == answer_id)
    page = paginate(session, query, paging, AnswerRevision, "-revision")
    if page["total"] == 0:
        raise not_found("answer", answer_id)
    return page


@router.post("/{answer_id}/revisions/{revision}/restore", response_model=AnswerRead)
def restore_answer_revision(*, answer_id: int = AnswerId,
                            revision: int = Path(..., ge=1, le=DB_ID_MAX),
                            session: SessionDep,
                            caller: StaffUser) -> Answer:
    """Bring back that revision's content (the status is kept; a deleted answer returns as
    a draft)."""
    old = session.exec(select(AnswerRevision).where(AnswerRevision.answer_id == answer_id,
                                                    AnswerRevision.revision == revision)).first()
    if old is None:
        raise HTTPException(404, f"answer {answer_id} has no revision {revision}")
    row = crud.restore_revision(session, answer_id, old, caller.name)
    audit.record(session, caller.name, "answer.restore", "answer", answer_id,
                 from_revision=revision, revision=row.revision)
    session.commit()
    session.refresh(row)
    return row
