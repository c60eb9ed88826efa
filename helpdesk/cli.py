"""``helpdesk``: the one entry point for operators.

Imports are deferred into each command so that ``helpdesk --help`` answers in about a second
without loading TensorFlow, torch or Rasa.
"""

from __future__ import annotations

import os
import time
from enum import Enum
from pathlib import Path

import typer

from helpdesk.index_commands import index_app
from helpdesk.user_commands import users_app

app = typer.Typer(
    help="Lepton Helpdesk: run, train and manage the customer-service bot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The admin database.", no_args_is_help=True)
data_app = typer.Typer(help="The bot's seed data in data/.", no_args_is_help=True)
config_app = typer.Typer(help="The HELPDESK_* settings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(index_app, name="index")
app.add_typer(users_app, name="users")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@config_app.command("docs")
def config_docs(
    out: Path | None = typer.Option(None, help="Write here instead of standard output."),
) -> None:
    """Print the configuration reference, generated from the settings' fields."""
    from common.config import reference_markdown
    from common.files import write_atomic

    text = reference_markdown()
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_atomic(out, text)
        typer.echo(f"wrote {out}")


@config_app.command("show")
def config_show() -> None:
    """The settings in force (from the environment and the defaults), one per line."""
    from common.config import ENV_PREFIX, get_settings

    try:
        settings = get_settings()
    except ValueError as error:
        raise _fail(str(error), 2) from None
    for name, value in settings.dict().items():
        shown = "(set)" if name == "rasa_token" and value else value
        typer.echo(f"{ENV_PREFIX}{name.upper()}={shown}")


def _var_dir() -> Path:
    from common.config import get_settings

    return get_settings().var_dir


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Option("head", help="Alembic revision to upgrade to."),
    seed: bool = typer.Option(True, help="Import data/answers on a database never seeded."),
) -> None:
    """Apply database migrations, then import the seed answers on first run."""
    from admin_api import migrate
    from common.config import get_settings
    from retrieval.answers import AnswerFileError

    url = get_settings().database_url
    try:
        migrate.upgrade(url, revision)
        imported = migrate.seed_answers(url) if seed and revision == "head" else 0
    except AnswerFileError as error:
        raise _fail(str(error)) from None
    suffix = f"; imported {imported} answers" if imported else ""
    typer.echo(f"Database at revision {revision}{suffix}")


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Option(..., help="Alembic revision to go back to ('base' empties it)."),
) -> None:
    """Revert database migrations (data in dropped tables is lost)."""
    from admin_api import migrate

    migrate.downgrade(revision=revision)
    typer.echo(f"Database at revision {revision}")


def _build(out: Path | None, limit_per_intent: int | None) -> Path:
    from common.config import get_settings
    from learning import data_build
    from nlu.datasets import DataError
    from nlu.tuning import read_params

    out = out or get_settings().build_dir
    try:
        params = read_params(get_settings().nlu_params)
        if params:
            typer.echo(f"Using tuned classifier parameters from {get_settings().nlu_params}")
        result = data_build.build(out, limit_per_intent=limit_per_intent,
                                  classifier_params=params)
    except (DataError, ValueError) as error:
        raise _fail(str(error)) from None
    typer.echo(
        f"Built {result.out_dir}: {result.intents} intents, {result.examples} examples, "
        f"{result.answers} answers checked, data hash {result.data_hash[:12]}"
    )
    return result.out_dir


@data_app.command("build")
def data_build_command(
    out: Path = typer.Option(None, help="Output folder (default bot/generated)."),
    limit_per_intent: int = typer.Option(
        None, min=1, help="Keep at most N examples per intent (tiny models for tests)."
    ),
) -> None:
    """Validate data/ and generate the Rasa training project from it."""
    _build(out, limit_per_intent)


def _train(limit_per_intent: int | None, out: Path | None, force: bool) -> Path:
    from learning import train as bot_train

    build_dir = _build(None if limit_per_intent is None else _var_dir() / "build-limited",
                       limit_per_intent)
    typer.echo(f"Training the model (full Rasa output in {_var_dir() / 'logs' / 'train.log'})...")
    started = time.monotonic()
    try:
        model = bot_train.train(build_dir, out, force=force)
    except bot_train.TrainingFailed as error:
        raise _fail(str(error)) from None
    typer.echo(f"Trained {model} in {time.monotonic() - started:.0f}s")
    return model


@app.command()
def train(
    limit_per_intent: int = typer.Option(
        None, min=1, help="Keep at most N examples per intent (a tiny model, for tests)."
    ),
    out: Path = typer.Option(None, help="Folder for the model (default var/models)."),
    force: bool = typer.Option(False, help="Ignore Rasa's training cache."),
) -> None:
    """Build the data and train a new model."""
    _train(limit_per_intent, out, force)


@app.command()
def tune(
    sampler: str = typer.Option("tpe", help="grid, random or tpe (Bayesian)."),
    trials: int = typer.Option(10, min=1, help="Trials to run in this call."),
    study: str = typer.Option("intent-classifier", help="Study name (resumed if it exists)."),
    storage: str = typer.Option(None, help="Study database URL (default var/tuning.db; "
                                           "PostgreSQL lets several machines share a study)."),
    limit_per_intent: int = typer.Option(None, min=1, help="Tune on at most N examples per "
                                                           "intent (faster, noisier)."),
    seed: int = typer.Option(42),
) -> None:
    """Search classifier hyperparameters; the best go to the params file `train` uses."""
    from common.config import get_settings
    from learning import data_build
    from nlu.tuning import SAMPLERS, run_study, write_params

    if sampler not in SAMPLERS:
        raise _fail(f"--sampler must be one of {', '.join(SAMPLERS)}", 2)
    texts, labels = data_build.labelled_examples(_data_dir(), limit_per_intent)
    url = storage or get_settings().tuning_storage_url
    typer.echo(f"Study {study!r} in {url}: {trials} {sampler} trials on {len(texts)} examples")
    try:
        result = run_study(texts, labels, url, study, sampler, trials, seed)
    except ValueError as error:
        raise _fail(str(error), 2) from None
    best = result.best_trial
    path = write_params(get_settings().nlu_params, dict(best.params),
                        f"optuna study {study!r} trial {best.number}: validation accuracy "
                        f"{best.value:.4f}")
    typer.echo(f"Best trial {best.number}: validation accuracy {best.value:.4f}, "
               f"params {best.params}\nWrote {path}; `helpdesk train` uses it.")


def _data_dir() -> Path:
    from common.config import get_settings

    return get_settings().data_dir


@app.command()
def evaluate(
    model: Path = typer.Option(None, help="Intent model folder or Rasa model archive "
                                          "(default: the model `serve` would use)."),
    data: Path = typer.Option(None, help="CSV with text,category columns "
                                         "(default: BANKING77's held-out test.csv)."),
    out: Path = typer.Option(None, help="Report folder (default var/reports/<time>)."),
    backend: str = typer.Option("auto", help="auto, torch or onnx."),
) -> None:
    """Accuracy, per-intent F1, confusion matrix, calibration, OOS and latency of a model."""
    from common.config import get_settings
    from learning import train as bot_train
    from nlu import datasets
    from nlu.evaluation import evaluate as run_evaluation
    from nlu.evaluation import load_any, write_report

    try:
        chosen = model or bot_train.model_to_serve()
    except FileNotFoundError as error:
        raise _fail(str(error), 2) from None
    if chosen is None or not Path(chosen).exists():
        raise _fail(f"no model to evaluate: {chosen or 'var/models is empty'}", 2)
    try:
        examples = (datasets.load_banking77("test") if data is None
                    else datasets.load_examples_csv(data))
        classifier = load_any(Path(chosen), backend=backend)
    except (datasets.DataError, ValueError) as error:
        raise _fail(str(error), 2) from None
    typer.echo(f"Evaluating {chosen} on {len(examples)} examples...")
    result = run_evaluation(classifier, [e.text for e in examples],
                            [e.intent for e in examples])
    out = out or get_settings().var_dir / "reports" / time.strftime("%Y%m%d-%H%M%S")
    report = write_report(result, out, title=f"Evaluation of {Path(chosen).name}")
    for key, value in result["summary"].items():
        shown = (", ".join(f"{k} {v:.2f}" for k, v in value.items())
                 if isinstance(value, dict) else value)
        typer.echo(f"  {key:<40} {shown}")
    typer.echo(f"Report: {report} (JSON, confusion matrix PNG beside it)")


def _first_admin_token() -> None:
    """On a database with no users yet, make the admin and print its token, this once."""
    from sqlmodel import Session

    from admin_api.core import security
    from common.db import get_engine

    with Session(get_engine()) as session:
        secret = security.bootstrap_admin(session)
    if secret:
        typer.secho("\nFirst run: created the admin user. Its API token is shown only now;"
                    " keep it safe:", bold=True)
        typer.echo(f"  {secret}\n(more people: `helpdesk users create NAME --role staff`)\n")


def _production_model(train_if_missing: bool) -> Path:
    """The registry's production model, which Rasa will pull from the admin API.

    ``HELPDESK_MODEL`` (an operator's explicit choice) is registered and promoted; with no
    production model yet, the newest model in var/models is (trained first if there is none).
    """
    from sqlmodel import Session

    from common.config import get_settings
    from common.db import get_engine
    from learning import registry
    from learning import train as bot_train

    explicit = bool(get_settings().model)
    with Session(get_engine()) as session:
        current = registry.production(session)
        if current is not None and not explicit and Path(current.path).is_file():
            return Path(current.path)
        model = bot_train.model_to_serve()
        if model is None:
            if not train_if_missing:
                raise _fail("no model in var/models; run `helpdesk train` or set HELPDESK_MODEL")
            typer.echo("No model yet: training the default model first (a few minutes on a "
                       "laptop).")
            model = _train(None, None, False)
        try:
            entry = registry.register(session, model)
            reason = "HELPDESK_MODEL" if explicit else "first model served"
            registry.promote(session, entry, "helpdesk serve", reason=reason)
        except registry.RegistryError as error:
            raise _fail(str(error), 2) from None
        session.commit()
        return Path(entry.path)


@app.command()
def worker(
    once: bool = typer.Option(False, help="Run the queued jobs, then exit."),
) -> None:
    """Run retraining jobs and the threshold simulator's replays from the admin database
    (`helpdesk serve` starts one)."""
    from admin_api import simulator
    from common.config import get_settings
    from learning import worker as job_worker

    try:
        settings = get_settings()
    except ValueError as error:
        raise _fail(str(error), 2) from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    job_worker.run(settings, once=once, handlers={simulator.REPLAY: simulator.replay})


@app.command()
def backup(
    folder: Path = typer.Argument(..., help="A new folder to write the backup into."),
) -> None:
    """Back up the admin database, the tracker store, the registry's model archives and the
    answer index, consistent with each other, while the product runs."""
    from common.config import get_settings
    from helpdesk import backup as backups

    try:
        manifest = backups.backup(get_settings(), folder, report=typer.echo)
    except (backups.BackupError, ValueError) as error:
        raise _fail(str(error), 2) from None
    typer.echo(f"Backed up into {folder}: {len(manifest['models'])} models, answers version "
               f"{manifest['answers_version']}.")


@app.command()
def restore(
    folder: Path = typer.Argument(..., help="A folder written by `helpdesk backup`."),
) -> None:
    """Restore a backup into the configured (empty) databases and var folder; then
    `helpdesk serve` serves the same answers with the same production model."""
    from common.config import get_settings
    from helpdesk import backup as backups

    try:
        manifest = backups.restore(get_settings(), folder, report=typer.echo)
    except (backups.BackupError, ValueError) as error:
        raise _fail(str(error), 2) from None
    typer.echo(f"Restored {folder} (made {manifest['created_at']}); start it with "
               "`helpdesk serve`.")


class Profile(str, Enum):
    embedded = "embedded"
    scaled = "scaled"


@app.command()
def serve(
    train_if_missing: bool = typer.Option(
        True, "--train-if-missing/--no-train", help="Train the default model if none exists."
    ),
    profile: Profile = typer.Option(
        Profile.embedded, help="embedded: one of each process, nothing else to install. "
        "scaled: several Rasa instances, action servers and API workers behind HAProxy (TLS), "
        "sharing Redis and PostgreSQL (docs/scaling.md)."),
    rasa_instances: int = typer.Option(2, min=1, max=32, help="Rasa instances (scaled)."),
    action_servers: int = typer.Option(2, min=1, max=32, help="Action servers (scaled)."),
    api_workers: int = typer.Option(2, min=1, max=32, help="Admin API workers (scaled)."),
) -> None:
    """Run the Rasa server, action server, admin API and retraining worker until Ctrl-C."""
    from common.config import get_settings
    from helpdesk import serve as supervisor

    try:
        settings = get_settings()  # every process's settings: refuse bad ones before starting
    except ValueError as error:
        raise _fail(str(error), 2) from None
    topology = supervisor.Topology()
    if profile is Profile.scaled:
        try:
            supervisor.scaled_requirements(settings)
        except supervisor.ServeError as error:
            raise _fail(str(error), 2) from None
        topology = supervisor.Topology(True, rasa_instances, action_servers, api_workers)
    ports = {"admin API": settings.api_port, "action server": settings.actions_port,
             "Rasa server": settings.rasa_port}
    if len(set(ports.values())) != len(ports):
        raise _fail(f"two services share a port: {ports}", 2)
    try:
        supervisor.check_ports_free(settings.host, ports)
    except supervisor.ServeError as error:
        raise _fail(str(error), 2) from None
    db_upgrade(revision="head", seed=True)
    _first_admin_token()
    try:
        model = _production_model(train_if_missing)
    except FileNotFoundError as error:
        raise _fail(str(error), 2) from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        code = supervisor.run(settings, model, _var_dir(), topology)
    except supervisor.ServeError as error:
        raise _fail(str(error)) from None
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
