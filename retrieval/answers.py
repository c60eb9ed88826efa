"""The one answer schema: what a curated answer is, and its YAML import/export format.

The admin database stores answers with exactly these fields, ``data/answers/*.yaml`` seeds it,
and the retriever indexes them, so the schema lives here, below all three.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterator
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, StrictStr, ValidationError, validator

from common.schema import document_nullable
from common.text import INTENT_PATTERN

TITLE_MAX = 200
BODY_MAX = 20_000
QUESTION_MAX = 500
MAX_QUESTIONS = 50
TAG_MAX = 50
MAX_ANSWERS_PER_FILE = 5_000  # an import or seed file; more is a mistake or an attack
MAX_ANSWER_ID = 2**31 - 1  # the database's integer key; the FAISS id scheme allows up to 2**53


class AnswerStatus(str, enum.Enum):
    draft = "draft"
    published = "published"


class AnswerFileError(ValueError):
    """A malformed answers file; the message names the file and the entry."""


def _clean_text(value: str, name: str, max_length: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_length:
        raise ValueError(f"{name} is longer than {max_length} characters")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL characters")
    return value


class AnswerData(BaseModel):
    """A curated answer as written in YAML and exchanged over the API."""

    id: int | None = Field(None, ge=1, le=MAX_ANSWER_ID)
    intent: str | None = Field(
        None, regex=INTENT_PATTERN, max_length=100,
        description="Intent this answer serves; None for answers only the retriever finds.",
    )
    # Strict: a number where text belongs is a mistake to report, not to turn into "5".
    title: StrictStr
    body: StrictStr = Field(..., description="Markdown shown to the customer.")
    questions: list[StrictStr] = Field(default_factory=list, description="Question variants.")
    tags: list[StrictStr] = Field(default_factory=list)
    status: AnswerStatus = AnswerStatus.draft

    class Config:
        extra = "forbid"
        schema_extra = staticmethod(document_nullable)  # the admin API's OpenAPI shows it

    @validator("title")
    def _title(cls, value: str) -> str:  # pydantic validator
        return _clean_text(value, "title", TITLE_MAX)

    @validator("body")
    def _body(cls, value: str) -> str:
        return _clean_text(value, "body", BODY_MAX)

    @validator("questions")
    def _questions(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_QUESTIONS:
            raise ValueError(f"at most {MAX_QUESTIONS} question variants")
        cleaned = [_clean_text(q, "question", QUESTION_MAX) for q in value]
        if len({q.lower() for q in cleaned}) != len(cleaned):
            raise ValueError("question variants must be unique")
        return cleaned

    @validator("tags")
    def _tags(cls, value: list[str]) -> list[str]:
        return sorted({_clean_text(t, "tag", TAG_MAX).lower() for t in value})


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
    )


def load_answers_file(path: Path) -> list[AnswerData]:
    """Parse one YAML file (a list of answers); every answer there must carry an id."""
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise AnswerFileError(f"{path}: not valid YAML: {error}") from error
    answers = parse_answers_yaml(content, str(path))
    for position, answer in enumerate(answers, start=1):
        if answer.id is None:
            raise AnswerFileError(f"{path}: entry {position}: missing id")
    return answers


def _validated(entries: list, source: str, what: str) -> list[AnswerData]:
    answers = []
    for position, entry in enumerate(entries, start=1):
        label = f"{source}: {what} {position}"
        if isinstance(entry, dict) and entry.get("id") not in (None, ""):
            label += f" (id {entry['id']})"
        if not isinstance(entry, dict):
            raise AnswerFileError(f"{label}: expected a mapping")
        try:
            answers.append(AnswerData(**entry))
        except (ValidationError, TypeError) as error:
            reason = _describe(error) if isinstance(error, ValidationError) else str(error)
            raise AnswerFileError(f"{label}: {reason}") from error
    ids = [a.id for a in answers if a.id is not None]
    if len(ids) != len(set(ids)):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise AnswerFileError(f"{source}: answer id {duplicate} appears more than once")
    return answers


class _PlainLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: answer files never need them, and an alias expands
    in memory (a megabyte of ``- *a`` is hundreds of thousands of answers)."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed in answer files",
                event.start_mark)
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def _too_many(count: int, source: str) -> AnswerFileError:
    return AnswerFileError(f"{source}: {count} answers; at most {MAX_ANSWERS_PER_FILE} per file "
                           "(split it)")


def parse_answers_yaml(content: str, source: str = "<yaml>") -> list[AnswerData]:
    """Answers from the YAML format (a list of mappings); ids are optional here."""
    try:
        entries = yaml.load(content, Loader=_PlainLoader)  # a SafeLoader
    except yaml.YAMLError as error:
        raise AnswerFileError(f"{source}: not valid YAML: {error}") from error
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise AnswerFileError(f"{source}: expected a list of answers")
    if len(entries) > MAX_ANSWERS_PER_FILE:
        raise _too_many(len(entries), source)
    return _validated(entries, source, "entry")


CSV_COLUMNS = ("id", "intent", "title", "status", "tags", "questions", "body")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): the
# export prefixes such a cell with an apostrophe, and the import takes it off again.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _neutralised(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _restored(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def parse_answers_csv(content: str, source: str = "<csv>") -> list[AnswerData]:
    """Answers from the CSV format: one row per answer, ``questions`` and ``tags`` one per
    line inside their cell (spreadsheets keep line breaks in quoted cells)."""
    reader = csv.DictReader(io.StringIO(content))
    if reader.fieldnames is None:
        return []
    missing = {"title", "body"} - set(reader.fieldnames)
    unknown = set(reader.fieldnames) - set(CSV_COLUMNS)
    if missing or unknown:
        raise AnswerFileError(f"{source}: columns must be among {', '.join(CSV_COLUMNS)} and "
                              f"include title and body (missing {sorted(missing)}, unknown "
                              f"{sorted(unknown)})")
    entries: list[dict] = []
    for row in reader:
        if None in row:
            raise AnswerFileError(f"{source}: row {reader.line_num}: more cells than columns")
        if len(entries) == MAX_ANSWERS_PER_FILE:
            raise _too_many(len(entries) + 1 + sum(1 for _ in reader), source)
        row = {k: _restored(v) if isinstance(v, str) else v for k, v in row.items()}
        entry: dict = {k: v for k, v in row.items() if v not in (None, "")}
        for key in ("questions", "tags"):
            entry[key] = [_restored(line) for line in (row.get(key) or "").splitlines()
                          if line.strip()]
        entries.append(entry)
    return _validated(entries, source, "row")


def dump_answers_csv(answers: list[AnswerData]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for answer in answers:
        # List cells hold one entry a line, and the import splits them again: each line is
        # neutralised on its own.
        writer.writerow({
            "id": answer.id, "intent": answer.intent or "", "title": _neutralised(answer.title),
            "status": answer.status.value,
            "tags": "\n".join(_neutralised(t) for t in answer.tags),
            "questions": "\n".join(_neutralised(q) for q in answer.questions),
            "body": _neutralised(answer.body)})
    return out.getvalue()


def iter_answers_dir(folder: Path) -> Iterator[tuple[Path, AnswerData]]:
    """Each answer of a folder's ``*.yaml`` files with its file, in name order.

    Ids must be unique across files; the error names both files.
    """
    seen: dict[int, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        for answer in load_answers_file(path):
            assert answer.id is not None
            if answer.id in seen:
                raise AnswerFileError(
                    f"{path}: answer id {answer.id} ({answer.title!r}): duplicate answer id, "
                    f"already used in {seen[answer.id]}"
                )
            seen[answer.id] = path
            yield path, answer


def load_answers_dir(folder: Path) -> list[AnswerData]:
    """All answers of a folder (see ``iter_answers_dir``)."""
    return [answer for _, answer in iter_answers_dir(folder)]


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line bodies as ``|`` blocks so exported files stay readable and diffable."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_representer)


def dump_answers(answers: list[AnswerData]) -> str:
    """The YAML export format: the same one ``load_answers_file`` reads."""
    rows = []
    for answer in answers:
        row = answer.dict()
        row["status"] = answer.status.value
        if not row["body"].endswith("\n"):
            row["body"] += "\n"
        order = ("id", "intent", "title", "status", "tags", "questions", "body")
        rows.append({k: row[k] for k in order})
    return yaml.dump(rows, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100)
