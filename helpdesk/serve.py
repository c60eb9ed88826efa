"""``helpdesk serve``: run the admin API, the action server and Rasa as one supervised unit.

Two profiles. ``embedded`` (the default) runs one of each on SQLite, with nothing else to
install. ``scaled`` runs Rasa's own distributed setup on one machine: several Rasa instances
sharing Redis (lock store, socket.io rooms, rate limits) and a PostgreSQL tracker store,
several action servers, the admin API under several uvicorn workers, and HAProxy in front
(``helpdesk/proxy.py``), terminating TLS; ``docs/scaling.md`` places the same pieces on several
machines.

Each service is a child process in its own process group with its own log under
``var/logs``. Startup waits for every health check. After that, a service that dies is
restarted, with a backoff that doubles while it keeps dying (``BACKOFF_FIRST`` up to
``BACKOFF_MAX``) and starts again from the first step once it has run ``STABLE_AFTER``; each
death and each recovery is reported. No death takes the others down: customers chat with Rasa
and the action server, so a crash of the back office (the admin API, the retraining worker)
must never silence them. Ctrl-C (or SIGTERM) stops all of them, so nothing is left running
behind the operator's back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from common.config import Settings
from common.processes import die_with_parent
from helpdesk import proxy

LOG_TAIL_LINES = 40
# One BLAS thread, and OpenMP threads that sleep rather than spin when idle, for the processes
# that answer customers (Rasa, the action servers).
SERVING_THREADS = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "OMP_WAIT_POLICY": "PASSIVE"}
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a service that ran this long starts its backoff again from the first


class ServeError(RuntimeError):
    """A startup or runtime failure, with a message meant for the operator."""


@dataclass(frozen=True)
class Topology:
    """How many of each process: one of each (``embedded``), or several behind HAProxy
    (``scaled``)."""

    scaled: bool = False
    rasa_instances: int = 1
    action_servers: int = 1
    api_workers: int = 1


def scaled_requirements(settings: Settings) -> None:
    """Refuse the scaled profile, naming what is missing, unless its shared state is
    shared: several processes cannot share SQLite across machines or Rasa's in-memory lock."""
    missing = []
    if not settings.redis_url:
        missing.append("HELPDESK_REDIS_URL (Redis: the lock store, socket.io rooms, rate "
                       "limits), e.g. redis://127.0.0.1:6379/0")
    for variable, url in (("HELPDESK_TRACKER_STORE_URL", settings.tracker_store_url),
                          ("HELPDESK_DATABASE_URL", settings.database_url)):
        if make_url(url).get_backend_name() != "postgresql":
            missing.append(f"{variable} on PostgreSQL, e.g. postgresql://user@host/helpdesk")
    if not proxy.binary():
        missing.append("HAProxy, the load balancer (Debian: apt-get install haproxy)")
    if missing:
        raise ServeError("the scaled profile needs:\n  " + "\n  ".join(missing))


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str | None  # None: alive is healthy (the worker serves no HTTP)
    log_path: Path
    env: dict[str, str]
    healthy: Callable[[httpx.Response], bool] = lambda reply: reply.status_code == 200
    health_headers: Callable[[], dict[str, str]] = dict
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_at: float = field(default=0.0, repr=False)
    backoff: float = field(default=0.0, repr=False)  # the delay before the next restart
    restart_at: float | None = field(default=None, repr=False)  # a restart is due then
    recovering_since: float | None = field(default=None, repr=False)  # died, not healthy yet

    def next_delay(self, now: float) -> float:
        """The wait before restarting a service that just died: doubling while it keeps
        dying, back to the first step once it had run for ``STABLE_AFTER`` seconds."""
        if now - self.started_at >= STABLE_AFTER or self.backoff == 0:
            self.backoff = BACKOFF_FIRST
        else:
            self.backoff = min(BACKOFF_MAX, self.backoff * 2)
        return self.backoff

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM),
        )
        self.started_at = time.monotonic()
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
            return self.healthy(httpx.get(self.health_url, headers=self.health_headers(),
                                          timeout=2))
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


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def plan(settings: Settings, topology: Topology) -> proxy.Layout | None:
    """The scaled profile's ports: the public ones for the proxy, free ones behind it."""
    if not topology.scaled:
        return None
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return proxy.Layout(
        host=settings.host, api_port=settings.api_port, rasa_port=settings.rasa_port,
        actions_port=settings.actions_port, rasa_internal_port=_free_port(host),
        api_backend=_free_port(host),
        rasa_backends=tuple(_free_port(host) for _ in range(topology.rasa_instances)),
        action_backends=tuple(_free_port(host) for _ in range(topology.action_servers)))


def public_urls(settings: Settings, layout: proxy.Layout | None) -> tuple[str, str]:
    """Where people reach the admin API and Rasa: TLS through the proxy when scaled."""
    if layout is None:
        return settings.url(settings.api_port), settings.url(settings.rasa_port)
    http_api, http_rasa = settings.url(settings.api_port), settings.url(settings.rasa_port)
    return http_api.replace("http://", "https://"), http_rasa.replace("http://", "https://")


def build_services(settings: Settings, var_dir: Path,
                   layout: proxy.Layout | None = None, api_workers: int = 1) -> list[Service]:
    """The services in start order (Rasa after the API and action server it calls).

    Rasa loads no model file itself: it pulls the registry's production model from the admin
    API (``models:`` in its endpoints) and swaps in a newly promoted one by itself; so does
    every instance of the scaled profile (``layout``), whose services reach each other
    through the proxy's internal fronts.
    """
    from admin_api.rasa_client import auth_header
    from bot.runtime import rasa_config as runtime

    rasa_ports: tuple[int, ...]
    action_ports: tuple[int, ...]
    if layout is None:
        api_port, rasa_ports, action_ports = (settings.api_port, (settings.rasa_port,),
                                              (settings.actions_port,))
        actions_url, rasa_url = settings.url(settings.actions_port), settings.url(
            settings.rasa_port)
    else:
        api_port, rasa_ports, action_ports = (layout.api_backend, layout.rasa_backends,
                                              layout.action_backends)
        actions_url = settings.url(layout.actions_port)
        rasa_url = settings.url(layout.rasa_internal_port)
    api_url = settings.url(api_port)
    public_api, public_rasa = public_urls(settings, layout)
    token = runtime.rasa_token()
    # Scaled, the pages are served over TLS: their origins are the proxy's.
    cors = ",".join(settings.cors_origin_list if settings.cors_origins or layout is None
                    else [public_api, f"https://localhost:{settings.api_port}"])
    env = dict(os.environ)
    env.update(
        {
            "HELPDESK_VAR_DIR": str(var_dir),
            "HELPDESK_CORS_ORIGINS": cors,
            # Scaled, the default public URL is the proxy's TLS one (unless one was set).
            "HELPDESK_PUBLIC_RASA_URL": (public_rasa if layout is not None
                                         and settings.public_rasa_url == settings.url(
                                             settings.rasa_port)
                                         else settings.public_rasa_url),
            "HELPDESK_ADMIN_API_URL": api_url,
            "HELPDESK_RASA_URL": rasa_url,  # the admin API's hand-off goes through Rasa
            "HF_HUB_OFFLINE": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "SANIC_HOST": settings.host,  # the action server's bind address
            "PYTHONUNBUFFERED": "1",
        }
    )
    # Rasa and the action servers answer one message at a time with small matrix products (the
    # classifier's example memory, a search): a BLAS or OpenMP pool's threads would spin after
    # each of them, burning more CPU than the product itself (docs/turn-cost.md).
    serving_env = {**env, **SERVING_THREADS}
    endpoints, credentials = runtime.write_run_config(
        var_dir / "run", actions_url, f"{api_url}/api/v1/models/production/file", token)
    logs = var_dir / "logs"
    python = sys.executable
    trusted = settings.trusted_proxies or (settings.host if layout is not None else "")
    api_env = dict(env)
    if api_workers > 1:
        # prometheus_client's multiprocess mode: /metrics sums every worker's counts.
        metrics_dir = var_dir / "run" / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        api_env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    services = [
        Service(
            "admin API",
            [python, "-m", "uvicorn", "admin_api.main:app", "--ws", "none", "--host", settings.host,
             "--port", str(api_port), *(["--workers", str(api_workers)] if api_workers > 1
                                        else []),
             *(["--forwarded-allow-ips", trusted] if trusted else ["--no-proxy-headers"])],
            f"{api_url}/health", logs / "admin_api.log", api_env,
        ),
    ]
    for number, port in enumerate(action_ports, 1):
        suffix = f" {number}" if layout is not None else ""
        services.append(Service(
            f"action server{suffix}",
            [python, "-m", "bot.runtime.action_server", "--actions", "bot.actions",
             "--port", str(port)],
            # Stateless: Rasa keeps the conversations, and customers get an apology (see
            # bot/runtime/channels.py) for the seconds it is away.
            f"{settings.url(port)}/health", logs / f"actions{suffix.strip()}.log", serving_env,
        ))
    rasa_env = (dict(serving_env, SANIC_PROXIES_COUNT="1") if layout is not None
                else serving_env)
    for number, port in enumerate(rasa_ports, 1):
        suffix = f" {number}" if layout is not None else ""
        services.append(Service(
            f"Rasa server{suffix}",
            # The token is read from the secrets file by bot.runtime.rasa_server, never passed
            # on the command line (which every local user can read).
            [python, "-m", "bot.runtime.rasa_server", "run", "--enable-api",
             "--endpoints", str(endpoints),
             "--credentials", str(credentials), "--interface", settings.host,
             "--port", str(port), "--cors", *cors.split(",")],
            f"{settings.url(port)}/status", logs / f"rasa{suffix.strip()}.log", rasa_env,
            healthy=lambda reply: reply.status_code == 200
            and bool(reply.json().get("model_file")),
            health_headers=lambda: auth_header(token),
        ))
    services.append(Service(
        # Its jobs live in the database: a restarted worker fails the job it lost (no
        # heartbeat) and goes on with the queue.
        "retraining worker", [python, "-m", "helpdesk.cli", "worker"], None,
        logs / "worker.log", env,
    ))
    if layout is not None:
        certificate = (Path(settings.tls_certificate) if settings.tls_certificate
                       else proxy.self_signed(var_dir / "secrets" / "proxy.pem", layout.host))
        config = var_dir / "run" / "haproxy.cfg"
        config.write_text(proxy.render(layout, certificate), encoding="utf-8")
        (var_dir / "run" / "topology.json").write_text(
            json.dumps(layout.to_dict(), indent=2), encoding="utf-8")
        services.append(Service(
            "proxy", [proxy.binary() or "haproxy", "-db", "-f", str(config)],
            f"{settings.url(layout.actions_port)}{proxy.HEALTH_PATH}", logs / "proxy.log", env,
        ))
    return services


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


def supervise(services: list[Service], now: float) -> None:
    """One round: restart the dead after their backoff, report those that are back."""
    for service in services:
        code = service.exit_code()
        if code is not None and service.restart_at is None:
            delay = service.next_delay(now)
            service.restart_at = now + delay
            service.recovering_since = service.recovering_since or now
            print(f"  {service.name} exited with code {code}; restarting it in {delay:g}s "
                  f"(log: {service.log_path})", flush=True)
        elif service.restart_at is not None and now >= service.restart_at:
            service.restart_at = None
            service.start()
        elif (code is None and service.recovering_since is not None
              and service.restart_at is None and service.is_healthy()):
            print(f"  {service.name} is back, {now - service.recovering_since:.1f}s after it "
                  "died", flush=True)
            service.recovering_since = None


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


def run(settings: Settings, model: Path, var_dir: Path,
        topology: Topology = Topology()) -> int:
    """Start everything, print the URLs, and supervise until Ctrl-C or a failure.

    ``model`` is the production model (already in the registry), named in the banner.
    """
    check_ports_free(
        settings.host,
        {"admin API": settings.api_port, "action server": settings.actions_port,
         "Rasa server": settings.rasa_port},
    )
    layout = plan(settings, topology)
    services = build_services(settings, var_dir, layout, topology.api_workers)
    public_api, public_rasa = public_urls(settings, layout)
    # Handle Ctrl-C, kill and a closed terminal alike. SIGINT is set explicitly because a
    # shell starts background jobs with it ignored, and Python then installs no handler.
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in handled}
    try:
        print(f"Starting services (model {model.name}, logs in {var_dir / 'logs'})", flush=True)
        for service in services:
            service.start()
        wait_until_healthy(services, settings.startup_timeout)
        scaled = "" if layout is None else (
            f" (scaled: {topology.rasa_instances} Rasa instances, {topology.action_servers} "
            f"action servers, {topology.api_workers} API workers behind HAProxy; "
            f"ports in {var_dir / 'run' / 'topology.json'})")
        print(
            f"\nLepton Helpdesk is running{scaled}:\n"
            f"  Widget demo page   {public_api}/\n"
            f"  Staff console      {public_api}/console\n"
            f"  Admin API          {public_api}/docs\n"
            f"  Rasa server        {public_rasa}\n"
            f"  Action server      {settings.url(settings.actions_port)}\n"
            f"  Retraining worker  log in {var_dir / 'logs' / 'worker.log'}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while True:
            supervise(services, time.monotonic())
            time.sleep(0.5)
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
