"""Answers: search, edit with a live preview, publish, history with diffs, import and export.

Every action calls the API's own route function, so the checks, the audit entry and the
answers clock are the API's; this module only turns forms into calls and results into HTML.
"""

from __future__ import annotations

import difflib

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Path,
    Query,
    Request,
    UploadFile,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlmodel import select

from admin_api.api.deps import SessionDep, StaffUser
from admin_api.api.paging import Paging
from admin_api.api.routes import answers as api
from admin_api.console import try_it
from admin_api.console.forms import blank, choice, lines, words
from admin_api.console.pages import is_htmx, notice, render
from admin_api.models import Answer, AnswerRevision, AnswerUpdate
from retrieval.answers import MAX_ANSWER_ID, AnswerData, AnswerStatus

router = APIRouter(prefix="/answers")


@router.get("", response_class=HTMLResponse)
def answer_list(request: Request, session: SessionDep, caller: StaffUser,
                q: str | None = Query(None, max_length=200),
                status: str | None = Query(None, max_length=20),
                intent: str | None = Query(None, max_length=100),
                tag: str | None = Query(None, max_length=50),
                paging: Paging = Depends()) -> HTMLResponse:
    filters = {"q": blank(q), "status": blank(status), "intent": blank(intent),
               "tag": blank(tag)}
    intent_value = filters["intent"]
    page = api.list_answers(status_=choice(AnswerStatus, status, "status"),
                            intent=intent_value, tag=filters["tag"], q=filters["q"],
                            sort="-updated_at", paging=paging, session=session, _=caller)
    template = "answers/_list.html" if is_htmx(request) else "answers/list.html"
    return render(request, template, caller, page=page, filters=filters,
                  statuses=[s.value for s in AnswerStatus],
                  intents=try_it.model_intents(session))


@router.post("/import", response_class=HTMLResponse)
async def import_file(request: Request, session: SessionDep, caller: StaffUser,
                      file: UploadFile = File(...)) -> HTMLResponse:
    """All or nothing, like the API's import; a bad row is named in the error."""
    name = (file.filename or "").lower()
    format_ = "csv" if name.endswith(".csv") else "yaml"
    raw = await file.read()
    report = await run_in_threadpool(api.import_answers_file, raw, format_, session, caller)
    return notice(request, f"Imported {file.filename}: {len(report['created'])} created, "
                           f"{len(report['updated'])} updated, "
                           f"{len(report['unchanged'])} unchanged.")


@router.get("/new", response_class=HTMLResponse)
def new_answer(request: Request, session: SessionDep, caller: StaffUser,
               question: str | None = Query(None, max_length=500)) -> HTMLResponse:
    draft = {"id": None, "title": "", "body": "", "intent": "", "tags": [],
             "questions": [question] if question else [], "status": "draft", "revision": 0}
    return render(request, "answers/edit.html", caller, answer=draft,
                  intents=try_it.model_intents(session))


def _form_data(title: str, body: str, intent: str | None, tags: str | None,
               questions: str | None) -> dict:
    return {"title": title.strip(), "body": body, "intent": blank(intent),
            "tags": words(tags), "questions": lines(questions)}


@router.post("", response_class=HTMLResponse)
def create(request: Request, session: SessionDep, caller: StaffUser,
           title: str = Form(..., max_length=200), body: str = Form(..., max_length=20000),
           intent: str | None = Form(None, max_length=100),
           tags: str | None = Form(None, max_length=1000),
           questions: str | None = Form(None, max_length=100000)) -> HTMLResponse:
    data = AnswerData(**_form_data(title, body, intent, tags, questions))
    row = api.create_answer(data=data, session=session, caller=caller)
    return notice(request, f"Answer {row.id} created as a draft.",
                  headers={"HX-Redirect": f"/console/answers/{row.id}"})


@router.get("/{answer_id}", response_class=HTMLResponse)
def edit(request: Request, session: SessionDep, caller: StaffUser,
         answer_id: int = api.AnswerId) -> HTMLResponse:
    row = api.read_answer(answer_id=answer_id, session=session, _=caller)
    return render(request, "answers/edit.html", caller, answer=row,
                  intents=try_it.model_intents(session))


@router.post("/{answer_id}", response_class=HTMLResponse)
def save(request: Request, session: SessionDep, caller: StaffUser,
         answer_id: int = api.AnswerId,
         base_revision: int = Form(..., ge=1, le=2**62),
         title: str = Form(..., max_length=200), body: str = Form(..., max_length=20000),
         intent: str | None = Form(None, max_length=100),
         tags: str | None = Form(None, max_length=1000),
         questions: str | None = Form(None, max_length=100000)) -> HTMLResponse:
    """Save; a colleague's save in between is shown beside this one (nothing is lost)."""
    mine = _form_data(title, body, intent, tags, questions)
    current = session.get(Answer, answer_id)
    if current is not None and current.revision != base_revision:
        return render(request, "answers/_conflict.html", caller, status_code=409,
                      theirs=current, mine=mine, diff=_diffs(current.to_data().dict(), mine))
    row = api.update_answer(edit=AnswerUpdate(base_revision=base_revision, **mine),
                            answer_id=answer_id, session=session, caller=caller)
    return render(request, "answers/_saved.html", caller, answer=row)


@router.post("/{answer_id}/publish", response_class=HTMLResponse)
def publish(request: Request, session: SessionDep, caller: StaffUser,
            answer_id: int = api.AnswerId) -> HTMLResponse:
    row = api.publish_answer(answer_id=answer_id, session=session, caller=caller)
    return render(request, "answers/_status.html", caller, answer=row,
                  message="Published: the bot answers with it within seconds.")


@router.post("/{answer_id}/unpublish", response_class=HTMLResponse)
def unpublish(request: Request, session: SessionDep, caller: StaffUser,
              answer_id: int = api.AnswerId) -> HTMLResponse:
    row = api.unpublish_answer(answer_id=answer_id, session=session, caller=caller)
    return render(request, "answers/_status.html", caller, answer=row,
                  message="Unpublished: the bot no longer uses it.")


@router.post("/{answer_id}/delete", response_class=HTMLResponse)
def delete(request: Request, session: SessionDep, caller: StaffUser,
           answer_id: int = api.AnswerId,
           base_revision: int = Form(..., ge=1, le=2**62)) -> HTMLResponse:
    api.delete_answer(answer_id=answer_id, base_revision=base_revision, session=session,
                      caller=caller)
    return notice(request, f"Answer {answer_id} deleted (its history can restore it).",
                  headers={"HX-Redirect": "/console/answers"})


def _text(value: object) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _diffs(old: dict, new: dict) -> list[dict]:
    """Side-by-side line diffs of the fields that differ."""
    rows = []
    for name in ("title", "intent", "tags", "questions", "body", "status"):
        if name not in new or _text(old.get(name)) == _text(new.get(name)):
            continue
        left, right = _text(old.get(name)).splitlines(), _text(new.get(name)).splitlines()
        pairs = []
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=left, b=right).get_opcodes():
            for k in range(max(i2 - i1, j2 - j1)):
                a = left[i1 + k] if i1 + k < i2 else None
                b = right[j1 + k] if j1 + k < j2 else None
                pairs.append({"op": op, "old": a, "new": b})
        rows.append({"field": name, "pairs": pairs})
    return rows


@router.get("/{answer_id}/history", response_class=HTMLResponse)
def history(request: Request, session: SessionDep, caller: StaffUser,
            answer_id: int = api.AnswerId) -> HTMLResponse:
    revisions = session.exec(select(AnswerRevision).where(
        AnswerRevision.answer_id == answer_id).order_by(AnswerRevision.revision.desc())  # type: ignore[attr-defined]
        .limit(50)).all()
    if not revisions:
        raise HTTPException(404, f"answer {answer_id} has no history")
    entries = []
    for index, revision in enumerate(revisions):
        before = revisions[index + 1].data if index + 1 < len(revisions) else {}
        entries.append({"revision": revision, "diff": _diffs(before, revision.data)})
    return render(request, "answers/history.html", caller, answer_id=answer_id,
                  entries=entries, answer=session.get(Answer, answer_id))


@router.post("/{answer_id}/revisions/{revision}/restore", response_class=HTMLResponse)
def restore(request: Request, session: SessionDep, caller: StaffUser,
            answer_id: int = api.AnswerId,
            revision: int = Path(..., ge=1, le=MAX_ANSWER_ID)) -> HTMLResponse:
    row = api.restore_answer_revision(answer_id=answer_id, revision=revision,
                                      session=session, caller=caller)
    return notice(request, f"Restored revision {revision} as revision {row.revision}.",
                  headers={"HX-Redirect": f"/console/answers/{answer_id}"})
