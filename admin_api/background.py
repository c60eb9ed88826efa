"""The admin API's periodic tasks, run by exactly one of its processes.

With several uvicorn workers, or admin APIs on several machines, each process would otherwise
purge, propose, watch and fold the same data: duplicated work at best, and at worst two event
broker consumers folding one conversation's turns out of order. The process holding the
``background`` lease in the admin database runs them; it renews the lease every third of
``HELPDESK_LEASE_SECONDS`` and the others stand by, taking over when it lapses (a killed
holder) or at once when the holder let it go (a clean stop) or was a process of this machine
that no longer exists. A conditional UPDATE is the whole protocol, so it works the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from admin_api.models import Lease, utcnow
from common.config import get_settings
from common.db import get_engine

LEASE = "background"
logger = logging.getLogger(__name__)


def holder_id() -> str:
    """``host:pid:nonce``: unique per process, and it tells a local dead holder."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _gone(holder: str) -> bool:
    """Whether ``holder`` was a process of this machine that has exited."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def take(session: Session, holder: str, seconds: float, name: str = LEASE) -> bool:
    """Take or renew the lease ``name`` for ``seconds``; whether ``holder`` holds it now."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    current = session.get(Lease, name)
    if current is None:
        session.add(Lease(name=name, holder=holder, expires_at=expires))
        try:
            session.commit()
            return True
        except IntegrityError:  # another process inserted it first
            session.rollback()
            return False
    free = current.holder == holder or current.expires_at <= now or _gone(current.holder)
    if not free:
        return False
    seen = current.holder
    session.expire(current)
    # Only if nobody took it since we looked: two standbys cannot both win.
    taken = session.execute(
        update(Lease).where(Lease.name == name, Lease.holder == seen)  # type: ignore[arg-type]
        .values(holder=holder, expires_at=expires))
    session.commit()
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def let_go(session: Session, holder: str, name: str = LEASE) -> None:
    """End ``holder``'s lease now (a clean stop), so a standby need not wait for it to lapse."""
    session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)  # type: ignore[arg-type]
                    .values(expires_at=utcnow()))
    session.commit()


def start(stop: threading.Event, start_tasks: Callable[[threading.Event], None],
          holder: str | None = None, name: str = LEASE) -> threading.Thread:
    """Stand by for the lease until ``stop``; while holding it, run ``start_tasks`` (given an
    event that is set when the lease is lost or the process stops)."""
    me = holder or holder_id()
    seconds = get_settings().lease_seconds
    every = seconds / 3

    def attempt() -> bool | None:
        try:
            with Session(get_engine()) as session:
                return take(session, me, seconds, name)
        except SQLAlchemyError as error:
            logger.warning("background lease unreadable, will retry: %s", error)
            return None

    def loop() -> None:
        while not stop.is_set():
            if attempt():
                logger.info("running the periodic tasks (lease %s held by %s)", name, me)
                tasks = threading.Event()
                start_tasks(tasks)
                renewed_at = utcnow()
                while not stop.wait(every):
                    held = attempt()
                    if held:
                        renewed_at = utcnow()
                    elif held is False or utcnow() - renewed_at > timedelta(seconds=seconds):
                        logger.warning("lost the background lease: periodic tasks stop here")
                        break
                tasks.set()
                if stop.is_set():
                    try:
                        with Session(get_engine()) as session:
                            let_go(session, me, name)
                    except SQLAlchemyError:
                        pass  # it lapses by itself
                    return
            stop.wait(every)

    thread = threading.Thread(target=loop, name="background-lease", daemon=True)
    thread.start()
    return thread
