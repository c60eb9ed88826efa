"""``helpdesk index build|stats|search|calibrate|finetune``: the answer retriever, from a terminal.

The action server keeps its own index live from the admin API; ``build`` writes the snapshot
it starts from (so its first start encodes nothing), and ``search`` shows what it would answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from retrieval.decision import Calibration

index_app = typer.Typer(help="The answer retriever's FAISS index.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _retriever():  # lazy import keeps `helpdesk --help` fast
    from common.config import get_settings
    from retrieval.encoder import load_encoder
    from retrieval.retriever import Retriever

    try:
        encoder = load_encoder(get_settings().encoder_models,
                               cache_path=get_settings().index_dir / "embeddings.sqlite")
    except ValueError as error:
        raise _fail(f"HELPDESK_RETRIEVER_MODEL: {error}", 2) from None
    try:
        return Retriever(encoder)
    except ValueError as error:  # a hand-edited thresholds file that does not parse
        raise _fail(f"HELPDESK_RETRIEVER_THRESHOLDS: {error}", 2) from None


def _published_answers() -> list:  # list[AnswerData]
    from sqlalchemy.exc import OperationalError, ProgrammingError
    from sqlmodel import Session, select

    from admin_api.models import Answer
    from common.db import get_engine
    from retrieval.answers import AnswerStatus

    try:
        with Session(get_engine()) as session:
            rows = session.exec(select(Answer).where(
                Answer.status == AnswerStatus.published.value)).all()
            return [row.to_data() for row in rows]
    except (OperationalError, ProgrammingError) as error:
        raise _fail(f"cannot read answers ({error.orig}); run `helpdesk db upgrade` first") \
            from None


def _rankings(model: Path, texts: list[str]) -> list[list[dict]]:
    """Intent rankings as the action server receives them: the top 10, rescaled as the Rasa
    component rescales them (its learned threshold onto the configured fallback threshold)."""
    import yaml

    from common.config import BOT_DIR
    from nlu.evaluation import load_any
    from nlu.rasa_component import to_rasa

    classifier = load_any(model)
    pipeline = yaml.safe_load((BOT_DIR / "config.yml").read_text(encoding="utf-8"))["pipeline"]
    configured = next(c["threshold"] for c in pipeline if c["name"] == "FallbackClassifier")
    config = {"fallback_threshold": configured, "ranking_length": 10}
    return [to_rasa(p, classifier, config)[1] for p in classifier.predict_batch(texts)]


def _put_in_force(calibration: Calibration, source: str) -> int:
    """The new calibration as the admin database's setting in force (audited): every action
    server takes it from the answers feed within seconds."""
    from sqlmodel import Session

    from admin_api import thresholds
    from common.db import get_engine

    with Session(get_engine()) as session:
        row = thresholds.record(session, "helpdesk index calibrate", calibration, source,
                                action="thresholds.calibrate")
        session.commit()
        assert row.id is not None
        return row.id


@index_app.command("calibrate")
def calibrate(
    data: Path = typer.Option(
        None, help="Labelled questions never trained on (CSV with `text` and `intent` or "
                   "`category`); default: a stratified split of the domain's training questions."),
    share: float = typer.Option(0.1, min=0.01, max=0.5,
                                help="Share of each intent's training questions held out "
                                     "for validation (without --data)."),
    oos: Path = typer.Option(None, help="Out-of-scope questions, one per line: what the "
                                        "bot must not answer."),
    classifier: Path = typer.Option(
        None, help="An intent model (folder or Rasa archive) whose rankings choose the boost "
                   "and the with-ranking thresholds; without it those are kept."),
    out: Path = typer.Option(None, help="Where to write; default: HELPDESK_RETRIEVER_THRESHOLDS."),
    put_in_force: bool = typer.Option(
        None, "--put-in-force/--no-put-in-force",
        help="Also put it in force in the admin database (the running bot takes it within "
             "seconds); default: when writing HELPDESK_RETRIEVER_THRESHOLDS."),
    seed: int = typer.Option(0, help="Seed of the validation split."),
    limit_per_intent: int = typer.Option(None, min=1, help="Use at most N training "
                                         "questions per intent (a quick run)."),
) -> None:
    """Choose the retriever's support and boost weights and its decision thresholds on
    labelled questions, for the published answers and the configured encoder."""
    import time
    from collections import defaultdict

    from common.config import get_settings
    from nlu import datasets
    from retrieval.calibrate import Queries
    from retrieval.calibrate import calibrate as choose

    settings = get_settings()
    answers = _published_answers()
    answer_of = {a.intent: a.id for a in answers if a.intent}
    if not answer_of:
        raise _fail("no published answer has an intent: nothing to calibrate against", 2)
    try:
        training = datasets.load_banking77("train")
        if limit_per_intent:
            per_intent: dict[str, list] = defaultdict(list)
            for example in training:
                per_intent[example.intent].append(example)
            training = [e for group in per_intent.values() for e in group[:limit_per_intent]]
        if data is None:
            training, validation = datasets.stratified_split(training, share, seed)
            source = f"{len(validation)} validation questions ({share:g} of each intent's)"
        else:
            validation = datasets.load_examples_csv(data)
            source = f"{len(validation)} questions of {data.name}"
        outside = ([line.strip() for line in oos.read_text(encoding="utf-8").splitlines()
                    if line.strip()] if oos is not None else [])
    except (datasets.DataError, OSError, UnicodeDecodeError) as error:
        raise _fail(str(error), 2) from None
    inside = [e for e in validation if e.intent in answer_of]
    if not inside:
        raise _fail("no validation question has an intent with a published answer", 2)
    skipped = len(validation) - len(inside)
    texts = [e.text for e in inside] + outside
    gold: list[int | None] = [answer_of[e.intent] for e in inside]
    gold += [None] * len(outside)
    support_texts: dict[int, list[str]] = defaultdict(list)
    for example in training:
        if example.intent in answer_of:
            support_texts[answer_of[example.intent]].append(example.text)
    typer.echo(f"Calibrating on {len(inside)} in-scope questions ({skipped} without an answer "
               f"skipped) and {len(outside)} out-of-scope ones...")
    rankings = _rankings(classifier, texts) if classifier is not None else None
    retriever = _retriever()
    previous = retriever.calibration
    chosen_on = (f"helpdesk index calibrate {time.strftime('%Y-%m-%d')}: {source} + "
                 f"{len(outside)} out-of-scope questions, encoder {retriever.encoder.model_id}"
                 + ("" if rankings else "; boost and with-ranking thresholds kept"))
    choice = choose(retriever.encoder, answers, Queries(texts, gold, rankings),
                    chosen_on=chosen_on, support_texts=dict(support_texts), previous=previous,
                    progress=lambda step: typer.echo(f"  {step}..."))
    target = out or settings.retriever_thresholds
    choice.calibration.save(target)
    typer.echo(f"support {choice.calibration.support:g}, boost {choice.calibration.boost:g}; "
               f"recall@1 on validation {json.dumps(choice.recall_at_1)}; "
               f"mean worth {json.dumps(choice.worth)}")
    for name, thresholds in (("without a ranking", choice.calibration.without_ranking),
                             ("with a ranking", choice.calibration.with_ranking)):
        typer.echo(f"  {name}: fallback {thresholds.fallback:g}, answer "
                   f"{thresholds.answer:g}, margin {thresholds.margin:g}")
    typer.echo(f"Wrote {target}.")
    if put_in_force if put_in_force is not None else out is None:
        revision = _put_in_force(choice.calibration, chosen_on)
        typer.echo(f"In force as revision {revision}: action servers apply it within seconds.")
    else:
        typer.echo("Not put in force: the admin database keeps its setting.")


@index_app.command("build")
def build() -> None:
    """Index every published answer of the admin database and save a snapshot."""
    from sqlalchemy.exc import OperationalError, ProgrammingError
    from sqlmodel import Session, select

    from admin_api import crud
    from admin_api.models import Answer
    from common.config import get_settings
    from common.db import get_engine
    from retrieval import snapshot
    from retrieval.answers import AnswerStatus

    try:
        with Session(get_engine()) as session:
            version = crud.current_version(session)
            rows = session.exec(select(Answer).where(
                Answer.status == AnswerStatus.published.value)).all()
            answers = [row.to_data() for row in rows]
    except (OperationalError, ProgrammingError) as error:
        raise _fail(f"cannot read answers ({error.orig}); run `helpdesk db upgrade` first") \
            from None
    retriever = _retriever()
    typer.echo(f"Encoding {len(answers)} published answers...")
    retriever.replace_all(answers, version, progress=True)
    folder = snapshot.save(retriever, get_settings().index_dir)
    stats = retriever.stats()
    typer.echo(f"Indexed {stats['answers']} answers through {stats['vectors']} texts "
               f"({stats['index']} index on the {stats['device']}, answers version {version}); "
               f"snapshot {folder}")


@index_app.command("finetune")
def finetune(
    out: Path = typer.Option(None, help="Folder for the encoder (default "
                                        "var/encoders/retriever-<date>)."),
    epochs: int = typer.Option(3, min=1, help="Passes over the examples (3: the benchmark's)."),
    limit_per_intent: int = typer.Option(None, min=2, help="At most N examples per intent "
                                                           "(quick trials)."),
) -> None:
    """Fine-tune the retriever's encoder on the bot's training examples (contrastive).

    Questions of one intent are pulled together and others pushed apart, so an answer's
    variants reach the customers who word it differently. Point HELPDESK_RETRIEVER_MODEL at
    the folder (alone, or beside another encoder, separated by ':', for an ensemble).
    """
    import time

    from common.config import get_settings, shipped_model
    from learning import data_build
    from nlu.datasets import DataError
    from retrieval.finetune import FinetuneParams
    from retrieval.finetune import finetune as run_finetune

    out = out or get_settings().var_dir / "encoders" / f"retriever-{time.strftime('%Y%m%d-%H%M')}"
    # finetune() replaces its output folder: never let it wipe a folder it did not make.
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / "FINETUNED.txt").is_file())):
        raise _fail(f"{out} exists and is not an encoder made by this command; "
                    "choose another --out", 2)
    try:
        texts, labels = data_build.labelled_examples(get_settings().data_dir, limit_per_intent)
    except DataError as error:
        raise _fail(str(error), 2) from None
    typer.echo(f"Fine-tuning {shipped_model()} on {len(texts)} examples of "
               f"{len(set(labels))} intents, {epochs} epochs...")
    run_finetune(shipped_model(), texts, labels, out, FinetuneParams(epochs=epochs))
    typer.echo(f"Saved {out}\nUse it: HELPDESK_RETRIEVER_MODEL={out.resolve()} (or beside "
               "another encoder, separated by ':'), then `helpdesk index build`.")


@index_app.command("stats")
def stats() -> None:
    """Print the current snapshot's manifest."""
    from common.config import get_settings
    from retrieval import snapshot

    try:
        info = snapshot.stats(get_settings().index_dir)
    except snapshot.SnapshotError as error:
        raise _fail(str(error)) from None
    if info is None:
        raise _fail(f"no index snapshot under {get_settings().index_dir}; "
                    "run `helpdesk index build`")
    typer.echo(json.dumps(info, indent=2))


@index_app.command("search")
def search(
    query: str = typer.Argument(..., help="A customer's question."),
    k: int = typer.Option(5, min=1, max=100, help="How many answers to show."),
    classifier: Path = typer.Option(
        None, help="An intent model (folder or Rasa archive) whose ranking boosts answers."
    ),
) -> None:
    """Search the snapshot and print the top answers with their scores and the decision."""
    from common.config import get_settings
    from retrieval import snapshot

    retriever = _retriever()
    try:
        snapshot.load(retriever, get_settings().index_dir)
    except snapshot.SnapshotError as error:
        raise _fail(f"{error}; run `helpdesk index build`") from None
    ranking = None
    if classifier is not None:
        from nlu.evaluation import load_any

        prediction = load_any(classifier).predict(query)
        ranking = [{"name": n, "confidence": c} for n, c in prediction.ranking]
        typer.echo(f"Classifier: {prediction.intent} ({prediction.confidence:.3f})")
    result = retriever.search(query, k=k, intent_ranking=ranking)
    typer.echo(f"Decision: {result.decision}")
    for rank, hit in enumerate(result.hits, start=1):
        typer.echo(f"{rank}. [{hit.answer_id}] {hit.title}  score {hit.score:.3f} "
                   f"(similarity {hit.similarity:.3f} + support {hit.support:.3f} "
                   f"+ boost {hit.boost:.3f})")
        typer.echo(f"     matched: {hit.matched_text[:100]}")
