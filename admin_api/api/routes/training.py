"""Training examples added after launch: listed, added, approved or rejected, and exported in
Rasa's NLU format for the next retraining (the seed data stays in ``data/``)."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from sqlmodel import Session, select

from admin_api.api.deps import Caller, SessionDep, StaffUser
from admin_api.api.paging import DB_ID_MAX, Page, Paging, not_found, paginate, sort_param
from admin_api.models import (
    ExampleBulkResult,
    ExampleBulkReview,
    ExampleSource,
    ExampleStatus,
    TrainingExample,
    TrainingExampleCreate,
    TrainingExampleRead,
    utcnow,
)
from common import audit
from common.text import INTENT_PATTERN

router = APIRouter(prefix="/training-examples", tags=["training data"])
DECIDED: dict[int | str, dict[str, Any]] = {
    409: {"description": "The example was already approved or rejected"}}
ExampleId = Path(..., ge=1, le=DB_ID_MAX)


@router.get("", response_model=Page[TrainingExampleRead])
def list_examples(
    *,
    status_: ExampleStatus | None = Query(None, alias="status"),
    intent: str | None = Query(None, max_length=100, pattern=INTENT_PATTERN),
    source: ExampleSource | None = None,
    sort: str = sort_param("-created_at", ("created_at", "intent", "id")),
    paging: Paging = Depends(),
    session: SessionDep,
    _: StaffUser,
) -> dict:
    query = select(TrainingExample)
    if status_ is not None:
        query = query.where(TrainingExample.status == status_.value)
    if intent is not None:
        query = query.where(TrainingExample.intent == intent)
    if source is not None:
        query = query.where(TrainingExample.source == source.value)
    return paginate(session, query, paging, TrainingExample, sort)


@router.get("/export", responses={200: {"content": {"application/yaml": {}}}})
def export_examples(*, session: SessionDep,
                    _: StaffUser) -> Response:
    """Approved examples as Rasa 3 NLU training data (``version: "3.1"``, ``nlu:`` list)."""
    rows = session.exec(select(TrainingExample)
                        .where(TrainingExample.status == ExampleStatus.approved.value)
                        .order_by(TrainingExample.intent, TrainingExample.id)).all()
    by_intent: dict[str, list[str]] = {}
    for row in rows:
        by_intent.setdefault(row.intent, []).append(row.text)
    nlu = [{"intent": intent, "examples": "".join(f"- {_escape(t)}\n" for t in texts)}
           for intent, texts in by_intent.items()]
    content = yaml.dump({"version": "3.1", "nlu": nlu}, Dumper=_LiteralDumper, sort_keys=False,
                        allow_unicode=True)
    return Response(content, media_type="application/yaml",
                    headers={"Content-Disposition": 'attachment; filename="feedback_nlu.yml"'})


def _escape(text: str) -> str:
    """Rasa reads ``[x](entity)`` and ``{...}`` annotations inside examples; customers' text
    must stay literal, so those characters are dropped from it."""
    return "".join(" " if c in "[](){}" else c for c in text).strip()


class _LiteralDumper(yaml.SafeDumper):
    pass


_LiteralDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


@router.post("", response_model=TrainingExampleRead, status_code=201,
             responses={409: {"description": "The same example already exists"}})
def add_example(*, body: TrainingExampleCreate, session: SessionDep,
                caller: StaffUser) -> TrainingExample:
    duplicate = session.exec(select(TrainingExample).where(
        TrainingExample.text == body.text, TrainingExample.intent == body.intent,
        TrainingExample.status != ExampleStatus.rejected.value)).first()
    if duplicate is not None:
        raise HTTPException(409, f"the same example already exists (id {duplicate.id})")
    example = TrainingExample(text=body.text, intent=body.intent, source="staff",
                              created_by=caller.name)
    session.add(example)
    session.flush()
    audit.record(session, caller.name, "training_example.create", "training_example",
                 example.id, intent=body.intent)
    session.commit()
    session.refresh(example)
    return example


def _set_status(session: Session, example: TrainingExample, target: ExampleStatus,
                caller: Caller) -> None:
    example.status = target
    example.approved_by, example.approved_at = caller.name, utcnow()
    session.add(example)
    audit.record(session, caller.name, f"training_example.{target.value}", "training_example",
                 example.id)


def _review(example_id: int, target: ExampleStatus, session: Session,
            caller: Caller) -> TrainingExample:
    example = session.get(TrainingExample, example_id)
    if example is None:
        raise not_found("training example", example_id)
    if example.status != ExampleStatus.pending.value:
        raise HTTPException(409, f"training example {example_id} is already {example.status}")
    _set_status(session, example, target, caller)
    session.commit()
    session.refresh(example)
    return example


@router.post("/review", response_model=ExampleBulkResult)
def review_examples(*, body: ExampleBulkReview, session: SessionDep,
                    caller: StaffUser) -> ExampleBulkResult:
    """Approve or reject up to 500 pending examples in one transaction; ids that are unknown
    or already reviewed are reported, not fatal, so a page of a queue that someone else is
    also working through can be submitted as it is."""
    ids = list(dict.fromkeys(body.ids))
    found = {e.id: e for e in session.exec(select(TrainingExample).where(
        TrainingExample.id.in_(ids))).all()}  # type: ignore[union-attr]
    changed: list[int] = []
    skipped: dict[int, str] = {}
    for example_id in ids:
        example = found.get(example_id)
        if example is None:
            skipped[example_id] = "no such training example"
        elif example.status != ExampleStatus.pending.value:
            skipped[example_id] = f"already {example.status}"
        else:
            _set_status(session, example, body.status, caller)
            changed.append(example_id)
    session.commit()
    return ExampleBulkResult(changed=changed, skipped=skipped)


@router.post("/{example_id}/approve", response_model=TrainingExampleRead, responses=DECIDED)
def approve_example(*, example_id: int = ExampleId, session: SessionDep,
                    caller: StaffUser) -> TrainingExample:
    """Approved examples go into the next retraining (``/export``)."""
    return _review(example_id, ExampleStatus.approved, session, caller)


@router.post("/{example_id}/reject", response_model=TrainingExampleRead, responses=DECIDED)
def reject_example(*, example_id: int = ExampleId, session: SessionDep,
                   caller: StaffUser) -> TrainingExample:
    return _review(example_id, ExampleStatus.rejected, session, caller)
