"""The lease that gives the admin API's periodic tasks to exactly one process
(``admin_api/background.py``), on SQLite and PostgreSQL. The app under test holds the real
lease itself, so these tests take one of their own name."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlmodel import Session

from admin_api import background
from admin_api.models import Lease, utcnow
from common.config import get_settings
from common.db import get_engine

NAME = "test-lease"


def test_one_holder_at_a_time_and_a_lapsed_lease_moves(client: object, database_url: str) -> None:
    with Session(get_engine(database_url)) as session:
        assert background.take(session, "a:1:x", 30, NAME)
        assert background.take(session, "a:1:x", 30, NAME)  # renewing
        assert not background.take(session, "b:2:y", 30, NAME)  # a standby waits
        lease = session.get(Lease, NAME)
        assert lease is not None
        lease.expires_at = utcnow() - timedelta(seconds=1)
        session.add(lease)
        session.commit()
        assert background.take(session, "b:2:y", 30, NAME)  # lapsed: the standby takes it
        assert not background.take(session, "a:1:x", 30, NAME)  # and the old holder lost it
        background.let_go(session, "b:2:y", NAME)
        assert background.take(session, "c:3:z", 30, NAME)  # let go: taken at once


def test_a_lease_held_by_a_process_of_this_machine_that_exited_is_taken_at_once(
        client: object, database_url: str) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with Session(get_engine(database_url)) as session:
        assert background.take(session, f"{socket.gethostname()}:{gone}:x", 300, NAME)
        assert background.take(session, background.holder_id(), 30, NAME)


def test_standbys_racing_for_a_free_lease_give_it_to_one(client: object,
                                                         database_url: str) -> None:
    barrier = threading.Barrier(8)
    winners: list[str] = []

    def race(n: int) -> None:
        with Session(get_engine(database_url)) as session:
            barrier.wait()
            if background.take(session, f"racer:{n}:x", 30, NAME):
                winners.append(str(n))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_the_tasks_start_in_the_holder_and_stop_with_it(
        client: object, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_LEASE_SECONDS", "1.5")
    get_settings.cache_clear()
    started: list[threading.Event] = []
    stop_a, stop_b = threading.Event(), threading.Event()
    first = background.start(stop_a, started.append, holder="host-a:1:a", name=NAME)
    deadline = utcnow() + timedelta(seconds=10)
    while not started and utcnow() < deadline:
        stop_a.wait(0.05)
    second = background.start(stop_b, started.append, holder="host-b:2:b", name=NAME)
    stop_b.wait(0.5)
    assert len(started) == 1  # the second process stands by
    stop_a.set()
    first.join(timeout=10)
    assert started[0].is_set()  # the holder's tasks were told to stop
    deadline = utcnow() + timedelta(seconds=30)
    while len(started) < 2 and utcnow() < deadline:
        stop_b.wait(0.1)
    assert len(started) == 2  # the standby took over the let-go lease
    stop_b.set()
    second.join(timeout=10)
