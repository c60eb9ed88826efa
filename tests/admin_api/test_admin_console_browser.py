"""The admin side of the console in a real browser (Debian's Chromium driven by Playwright)
against the whole product started by ``helpdesk serve`` on PostgreSQL, with Rasa streaming its
events through RabbitMQ: the dashboard shows what the summary API says, an admin retrains on
tiny data and promotes while a customer chats, staff watch but cannot act, and a rejected
candidate says why."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from admin_api.models import ModelStatus, utcnow
from admin_api.tracker import TrackerStore
from common.db import get_engine
from learning import registry
from tests.admin_api.test_console_browser import WAIT, _ask, _sign_in, _staff_token
from tests.admin_api.test_dashboard import random_traffic
from tests.admin_api.test_registry import archive
from tests.conftest import Served
from tests.tracker_seed import seed

pytestmark = pytest.mark.slow
JOB_DEADLINE = 600  # s: a whole retraining job on a busy 2-core machine


def _watch(page: object) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: errors.append(str(e)))  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: dialog.accept())  # type: ignore[attr-defined]
    return errors


def _production(served: Served, token: str) -> dict:
    reply = httpx.get(f"{served.api}/api/v1/models", params={"status": "production"},
                      headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    [entry] = reply.json()["items"]
    return entry


def _answered_by(served: Served, chat: Callable[[], None], customer: object,
                 model_id: str) -> None:
    """Chat until a reply comes from ``model_id`` (Rasa pulls production every 2 s)."""
    for _ in range(20):
        started = TrackerStore(served.tracker_url).last_event_id()
        chat()
        if any(t.model_id == model_id for t in TrackerStore(served.tracker_url).turns(
                after_event=started)):
            return
        customer.wait_for_timeout(1000)  # type: ignore[attr-defined]
    raise AssertionError(f"the bot never answered with model {model_id}")


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def test_the_dashboard_shows_what_the_summary_api_says_chart_table_and_csv_alike(
        browser: object, console_stack: Served) -> None:
    served = console_stack
    token = _staff_token(served, "dana")
    headers = {"Authorization": f"Bearer {token}"}
    today = utcnow().date()
    window = {"since": f"{today - timedelta(days=6)}T00:00:00+00:00",
              "until": f"{today + timedelta(days=1)}T00:00:00+00:00"}

    def summary() -> dict:
        return httpx.get(f"{served.api}/api/v1/metrics/summary", headers=headers,
                         params=window).json()

    before = summary()["messages"]
    conversations, ages = random_traffic(21, conversations=40, days=6)
    conversations = {f"dash-{k}": v for k, v in conversations.items()}
    ages = {f"dash-{k}": v for k, v in ages.items()}
    # Written as a running Rasa writes them: through the event broker when the stack has one.
    seed(served.tracker_url, conversations, ages,
         broker_url=served.env.get("HELPDESK_EVENT_BROKER_URL"),
         queue=served.env.get("HELPDESK_EVENT_QUEUE"))
    store = TrackerStore(served.tracker_url)
    seeded = [t for k in conversations for t in store.turns(session_id=k)]
    deadline = time.monotonic() + 60
    while (api := summary())["messages"] < before + len(seeded):
        assert time.monotonic() < deadline, (api["messages"], before, len(seeded))
        time.sleep(0.5)
    assert api["messages"] == before + len(seeded)

    context = browser.new_context(viewport={"width": 1280, "height": 900},  # type: ignore[attr-defined]
                                  accept_downloads=True)
    page = context.new_page()
    errors = _watch(page)
    _sign_in(page, served, token)
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Dashboard").wait_for(timeout=WAIT)
    api = summary()
    tile = page.locator("[data-figure]")
    assert tile.filter(has_text="").count() >= 8
    assert page.locator('[data-figure="messages"]').inner_text() == str(api["messages"])
    assert page.locator('[data-figure="conversations"]').inner_text() == str(
        api["conversations"])
    for key in ("answer_rate", "clarification_rate", "fallback_rate", "handoff_rate"):
        assert page.locator(f'[data-figure="{key}"]').inner_text() == _percent(api[key]), key
    # Each chart sits in a section with its figures as a table; the charts are drawn from
    # the same figures the tables show.
    charts = page.locator("canvas[data-chart]")
    assert charts.count() == 9
    for i in range(charts.count()):
        section = charts.nth(i).locator("xpath=ancestor::section[1]")
        assert section.locator("table").count() == 1
    daily_rows = page.locator("#table-daily tbody tr")
    drawn = page.evaluate("""() => {
        const chart = Chart.getChart(document.querySelector('canvas[data-chart="volume"]'));
        return {labels: chart.data.labels, messages: chart.data.datasets[0].data};
    }""")
    # The tables fold under their charts: read them as text, shown or not.
    table = [(daily_rows.nth(i).locator("th").text_content(),
              int(daily_rows.nth(i).locator("td").first.text_content() or ""))
             for i in range(daily_rows.count())]
    assert table == list(zip(drawn["labels"], drawn["messages"], strict=True))
    assert sum(m for _, m in table) == api["messages"]
    histogram = page.evaluate("""() => Chart.getChart(
        document.querySelector('canvas[data-chart="confidence"]')).data.datasets[0].data""")
    assert histogram == [b["count"] for b in api["confidence_histogram"]]
    models = page.locator("#table-models thead th")
    assert [models.nth(i).text_content() for i in range(1, models.count())] == [
        m["model_id"] for m in api["per_model"]]

    with page.expect_download() as download_info:
        page.locator("#table-daily").locator("xpath=ancestor::details[1]").get_by_role(
            "link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert [(r["day"], int(r["messages"])) for r in rows] == table
    assert errors == []
    context.close()
    # The seeded hand-offs go back to the bot: the stack's other tests expect an empty queue.
    for session_id in {t.session_id for t in seeded if t.outcome == "handoff"}:
        resumed = httpx.post(f"{served.api}/api/v1/handoff/{session_id}/resume",
                             headers=headers)
        assert resumed.status_code == 202, resumed.text


def test_an_admin_retrains_and_promotes_while_a_customer_chats_and_staff_only_watch(
        browser: object, console_stack: Served) -> None:
    served = console_stack
    admin_token = _staff_token(served, "ada", role="admin")
    staff_token = _staff_token(served, "stan")
    admin_context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    admin = admin_context.new_page()
    errors = _watch(admin)
    _sign_in(admin, served, admin_token)
    before = _production(served, admin_token)

    admin.get_by_role("link", name="Retraining").click()
    admin.get_by_label("Seed examples per intent (empty: all)").fill("12")
    admin.get_by_label("Promote if it passes the gate").uncheck()
    admin.get_by_role("button", name="Start retraining").click()
    admin.get_by_role("heading", name="Retraining job").wait_for(timeout=WAIT)
    job_id = int(admin.url.rstrip("/").rsplit("/", 1)[1])
    progress = admin.locator("#job-progress")

    # A customer chats all along: every message gets its reply.
    customer_context = browser.new_context()  # type: ignore[attr-defined]
    customer = customer_context.new_page()
    customer.goto(served.api + "/")
    customer.get_by_role("button", name="Open the chat").click()
    asked = 0

    def chat() -> None:
        nonlocal asked
        asked += 1
        _ask(customer, f"When will my card arrive? ({asked})")
        customer.locator(".message.bot").nth(asked - 1).wait_for(timeout=30_000)

    seen_steps: set[str] = set()
    values: list[float] = []
    deadline = time.monotonic() + JOB_DEADLINE
    while admin.locator("#job-status").inner_text() not in ("succeeded", "failed",
                                                              "cancelled"):
        assert time.monotonic() < deadline, admin.locator("#job-live").inner_text()
        values.append(float(progress.get_attribute("value") or 0))
        seen_steps.add(admin.locator("#job-live strong").first.inner_text()
                       if admin.locator("#job-live strong").count() else "")
        chat()
        admin.wait_for_timeout(2000)
    assert admin.locator("#job-status").inner_text() == "succeeded", admin.locator(
        "#job-live").inner_text()
    assert values == sorted(values) and float(progress.get_attribute("value") or 0) == 1.0
    assert len(seen_steps - {""}) >= 2  # the step changed while we watched
    assert admin.locator("#job-live table tbody tr").count() >= 5  # per-step times
    assert "passed the gate, kept as a candidate" in admin.locator("#job-live").inner_text()

    # Staff see the job but cannot start, cancel, promote or roll back: page and API.
    staff_context = browser.new_context()  # type: ignore[attr-defined]
    staff = staff_context.new_page()
    _sign_in(staff, served, staff_token)
    staff.goto(f"{served.api}/console/retraining")
    assert staff.get_by_role("link", name=str(job_id)).count() + staff.locator(
        f"a[href='/console/retraining/{job_id}']").count() >= 1
    assert staff.get_by_role("button", name="Start retraining").count() == 0
    staff.goto(f"{served.api}/console/retraining/{job_id}")
    assert staff.get_by_role("button", name="Cancel the job").count() == 0
    candidate = admin.locator("#job-live a[href^='/console/models/']").first
    model_path = candidate.get_attribute("href")
    candidate_id = candidate.inner_text()
    assert model_path
    staff.goto(served.api + model_path)
    assert staff.get_by_role("button", name="Promote to production").count() == 0
    staff.goto(f"{served.api}/console/models")
    assert staff.get_by_role("button", name="Roll back production").count() == 0
    bearer = {"Authorization": f"Bearer {staff_token}"}
    model_key = model_path.rsplit("/", 1)[1]
    for method, path in (("POST", "/api/v1/retrain"), ("POST", f"/api/v1/jobs/{job_id}/cancel"),
                         ("POST", f"/api/v1/models/{model_key}/promote"),
                         ("POST", "/api/v1/models/rollback")):
        assert httpx.request(method, served.api + path, headers=bearer,
                             json={}).status_code == 403, path
    csrf = staff.evaluate("() => JSON.parse(document.body.getAttribute('hx-headers'))"
                          "['X-CSRF-Token']")
    for path in ("/console/retraining", f"/console/models/{model_key}/promote",
                 "/console/models/rollback"):
        refused = staff.request.post(served.api + path, headers={"X-CSRF-Token": csrf})
        assert refused.status == 403, path

    # The admin promotes the candidate (with confirmation) while the customer goes on.
    admin.goto(served.api + model_path)
    admin.get_by_role("button", name="Promote to production").click()
    deadline = time.monotonic() + WAIT / 1000
    while (after := _production(served, admin_token))["model_id"] == before["model_id"]:
        assert time.monotonic() < deadline, "the promotion did not happen"
        time.sleep(0.3)
    assert after["model_id"] == candidate_id
    _answered_by(served, chat, customer, after["model_id"])

    # And rolls back (with confirmation): the bot answers with the model before, the customer
    # still gets every reply, and the other console tests find the bot they expect.
    admin.goto(f"{served.api}/console/models")
    admin.get_by_role("button", name="Roll back production").click()
    deadline = time.monotonic() + WAIT / 1000
    while _production(served, admin_token)["model_id"] != before["model_id"]:
        assert time.monotonic() < deadline, "the rollback did not happen"
        time.sleep(0.3)
    _answered_by(served, chat, customer, before["model_id"])
    assert customer.locator(".message.bot").count() >= asked
    assert errors == []
    for context in (admin_context, customer_context, staff_context):
        context.close()


def test_a_rejected_candidates_page_shows_why(browser: object, console_stack: Served,
                                              tmp_path: Path) -> None:
    served = console_stack
    reason = "held-out accuracy 0.6100 below production's 0.9000 - 0.0050"
    with Session(get_engine(served.database_url)) as session:
        entry = registry.register(
            session, archive(tmp_path, "rejected-one"),
            metrics={"candidate": {"accuracy": 0.61, "macro_f1": 0.6, "per_intent": {}}},
            gate={"passed": False, "reasons": [reason],
                  "checks": [{"check": "accuracy", "passed": False, "detail": reason}]},
            report="# Maturity report", status=ModelStatus.rejected)
        session.commit()
        key = entry.id
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, served, _staff_token(served, "rita"))
    page.goto(f"{served.api}/console/models?status=rejected")
    page.get_by_role("link", name="rejected-one").click()
    page.wait_for_url(f"**/console/models/{key}")
    assert page.get_by_text(reason).first.is_visible()
    context.close()
