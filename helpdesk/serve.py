"""``helpdesk serve``: run the admin API, the action server and Rasa as one supervised unit.

Each service is a child process in its own process group with its own log under
``var/logs``. Startup waits for every health check. The action server, which holds no state,
is restarted when it dies (up to 5 times in 5 minutes); any other death is reported with the
end of its log and takes the others down with it. Ctrl-C (or SIGTERM) stops all of them, so
nothing is left running behind the operator's back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.processes import die_with_parent
from helpdesk.settings import ServeSettings

LOG_TAIL_LINES = 40
RESTART_WINDOW = 300.0


class ServeError(RuntimeError):
    """A startup or runtime failure, with a message meant for the operator."""


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str | None  # None: alive is healthy (the worker serves no HTTP)
    log_path: Path
    env: dict[str, str]
    healthy: Callable[[httpx.Response], bool] = lambda reply: reply.status_code == 200
    # Restarts allowed within RESTART_WINDOW seconds before a death stops everything.
    max_restarts: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarted_at: list[float] = field(default_factory=list, repr=False)

    def may_restart(self) -> bool:
        now = time.monotonic()
        self.restarted_at = [t for t in self.restarted_at if now - t < RESTART_WINDOW]
        if len(self.restarted_at) >= self.max_restarts:
            return False
        self.restarted_at.append(now)
        return True

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM),
        )
        log.close()

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            content = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(content[-lines:])

    def is_healthy(self) -> bool:
        if self.health_url is None:
            return self.exit_code() is None
        try:
            return self.healthy(httpx.get(self.health_url, timeout=2))
        except httpx.HTTPError:
            return False

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after ``grace`` seconds."""
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.process.poll() is not None and not _group_alive(self.process.pid):
                    return
                time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """Fail before starting anything if a port is taken, naming the port and its setting."""
    for label, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise ServeError(
                    f"port {port} on {host} is already in use, so the {label} cannot start. "
                    f"Stop whatever uses it, or choose another port with "
                    f"{_PORT_VARIABLES[label]}."
                ) from None


_PORT_VARIABLES = {
    "admin API": "HELPDESK_API_PORT",
    "action server": "HELPDESK_ACTIONS_PORT",
    "Rasa server": "HELPDESK_RASA_PORT",
}


def build_services(settings: ServeSettings, var_dir: Path) -> list[Service]:
    """The services in start order (Rasa after the API and action server it calls).

    Rasa loads no model file itself: it pulls the registry's production model from the admin
    API (``models:`` in its endpoints) and swaps in a newly promoted one by itself.
    """
    from bot import runtime

    api_url = settings.url(settings.api_port)
    actions_url = settings.url(settings.actions_port)
    rasa_url = settings.url(settings.rasa_port)
    token = runtime.rasa_token()
    cors = os.environ.get("HELPDESK_CORS_ORIGINS") or ",".join(
        [api_url, f"http://localhost:{settings.api_port}"]
    )
    env = dict(os.environ)
    env.update(
        {
            "HELPDESK_VAR_DIR": str(var_dir),
            "HELPDESK_CORS_ORIGINS": cors,
            "HELPDESK_PUBLIC_RASA_URL": os.environ.get("HELPDESK_PUBLIC_RASA_URL", rasa_url),
            "HELPDESK_ADMIN_API_URL": api_url,
            "HELPDESK_RASA_URL": rasa_url,  # the admin API's hand-off goes through Rasa
            "HF_HUB_OFFLINE": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "SANIC_HOST": settings.host,  # the action server's bind address
            "PYTHONUNBUFFERED": "1",
        }
    )
    endpoints, credentials = runtime.write_run_config(
        var_dir / "run", actions_url, f"{api_url}/api/v1/models/production/file", token)
    logs = var_dir / "logs"
    python = sys.executable
    return [
        Service(
            "admin API",
            [python, "-m", "uvicorn", "admin_api.main:app", "--ws", "none", "--host", settings.host,
             "--port", str(settings.api_port)],
            f"{api_url}/health", logs / "admin_api.log", env,
        ),
        Service(
            "action server",
            [python, "-m", "bot.action_server", "--actions", "bot.actions",
             "--port", str(settings.actions_port)],
            f"{actions_url}/health", logs / "actions.log", env,
            # Stateless: Rasa keeps the conversations, and customers get an apology (see
            # bot/channels.py) for the seconds it is away.
            max_restarts=5,
        ),
        Service(
            "Rasa server",
            # "=": a random token may start with "-", which argparse would take for an option.
            [python, "-m", "rasa", "run", "--enable-api", f"--auth-token={token}",
             "--endpoints", str(endpoints),
             "--credentials", str(credentials), "--interface", settings.host,
             "--port", str(settings.rasa_port), "--cors", *cors.split(",")],
            f"{rasa_url}/status?token={token}", logs / "rasa.log", env,
            healthy=lambda reply: reply.status_code == 200
            and bool(reply.json().get("model_file")),
        ),
        Service(
            "retraining worker", [python, "-m", "helpdesk.cli", "worker"], None,
            logs / "worker.log", env,
            # Its jobs live in the database: a restarted worker fails the job it lost (no
            # heartbeat) and goes on with the queue.
            max_restarts=5,
        ),
    ]


def _died(service: Service) -> ServeError:
    return ServeError(
        f"{service.name} exited with code {service.exit_code()}. "
        f"Last lines of {service.log_path}:\n{service.log_tail()}"
    )


def wait_until_healthy(services: list[Service], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending:
        for service in list(pending):
            if service.exit_code() is not None:
                raise _died(service)
            if service.is_healthy():
                print(f"  {service.name} is up", flush=True)
                pending.remove(service)
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            tails = "\n".join(f"--- {s.log_path}:\n{s.log_tail(15)}" for s in pending)
            raise ServeError(f"not healthy after {timeout:.0f}s: {names}\n{tails}")
        time.sleep(0.5)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


def run(settings: ServeSettings, model: Path, var_dir: Path) -> int:
    """Start everything, print the URLs, and supervise until Ctrl-C or a failure.

    ``model`` is the production model (already in the registry), named in the banner.
    """
    check_ports_free(
        settings.host,
        {"admin API": settings.api_port, "action server": settings.actions_port,
         "Rasa server": settings.rasa_port},
    )
    services = build_services(settings, var_dir)
    # Handle Ctrl-C, kill and a closed terminal alike. SIGINT is set explicitly because a
    # shell starts background jobs with it ignored, and Python then installs no handler.
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in handled}
    try:
        print(f"Starting services (model {model.name}, logs in {var_dir / 'logs'})", flush=True)
        for service in services:
            service.start()
        wait_until_healthy(services, settings.startup_timeout)
        print(
            "\nLepton Helpdesk is running:\n"
            f"  Widget demo page   {settings.url(settings.api_port)}/\n"
            f"  Admin API          {settings.url(settings.api_port)}/docs\n"
            f"  Rasa server        {settings.url(settings.rasa_port)}\n"
            f"  Action server      {settings.url(settings.actions_port)}\n"
            f"  Retraining worker  log in {var_dir / 'logs' / 'worker.log'}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while True:
            for service in services:
                code = service.exit_code()
                if code is None:
                    continue
                if not service.may_restart():
                    raise _died(service)
                print(f"  {service.name} exited with code {code}; restarting it "
                      f"(log: {service.log_path})", flush=True)
                service.start()
            time.sleep(1)
    except _Stop:
        print("\nStopping...", flush=True)
        return 0
    finally:
        # A second Ctrl-C or SIGTERM must not abort the cleanup and leave orphans behind.
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)
        for service in reversed(services):
            service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("All services stopped.", flush=True)
