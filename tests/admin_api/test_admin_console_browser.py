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
from sqlmodel import Session, select

from admin_api.models import ModelStatus, utcnow
from admin_api.tracker import TrackerStore
from common.db import get_engine
from learning import registry
from tests.admin_api.test_console_browser import WAIT, _ask, _sign_in, _staff_token
from tests.admin_api.test_dashboard import random_traffic
from tests.admin_api.test_registry import archive
from tests.conftest import Served, sid
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


def _thresholds(served: Served, token: str) -> dict:
    reply = httpx.get(f"{served.api}/api/v1/thresholds",
                      headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    return reply.json()


def _decision(replies: list[dict]) -> str:
    """What the bot decided, from its REST replies (the answer action's custom payload)."""
    for reply in replies:
        data = ((reply.get("custom") or {}).get("data") or {})
        if data.get("decision"):
            return str(data["decision"])
    return "fallback"


def test_the_threshold_simulator_recounts_as_the_server_does_and_saving_changes_the_bot(
        browser: object, console_stack: Served) -> None:
    """An admin replays today's questions (a worker job, with progress), moves thresholds and
    reads counts that equal a recount of the cached scores with the bot's own decision
    function; saving puts them in force and the bot's next reply follows."""
    from admin_api import simulator
    from admin_api.models import ReplayTurn
    from retrieval.decision import Calibration, Thresholds, decide_scored
    from tests.admin_api.test_simulator import scored_turn

    served = console_stack
    token = _staff_token(served, "adele", role="admin")
    questions = ["how long does a new card take to arrive", "what exchange rate do you use",
                 "I want to close my account please", "can I add my card to google pay",
                 "how old do I need to be", "my card has still not come",
                 "do you sell garden furniture", "what is the fee for a top up"]
    store = TrackerStore(served.tracker_url)
    decided = {}
    for i, question in enumerate(questions):
        served.say(f"simulated-{i}", question)
        [turn] = store.turns(session_id=sid(f"simulated-{i}"))
        if turn.outcome in simulator.REPLAYED:  # the retriever decided it (not a flow)
            decided[question] = turn.outcome
    assert len(decided) >= 5 and "answer" in decided.values(), decided

    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    errors = _watch(page)
    _sign_in(page, served, token)
    page.get_by_role("link", name="Simulator").click()
    page.get_by_role("heading", name="Threshold simulator").wait_for(timeout=WAIT)
    today = utcnow().date().isoformat()
    latest = httpx.get(f"{served.api}/api/v1/simulator/replays/latest",
                       headers={"Authorization": f"Bearer {token}"})
    previous = latest.json()["id"] if latest.status_code == 200 else 0
    page.get_by_label("From (UTC)").fill(today)
    page.get_by_label("To (UTC, inclusive)").fill(today)
    page.get_by_role("button", name="Replay these days").click()
    # The page reloads with the job's live panel (step, progress, log), which says when the
    # questions are replayed; a very quick replay may have finished by the reload.
    deadline = time.monotonic() + 300
    while True:
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        if page.locator("#job-status").count():
            state = page.locator("#job-status").inner_text()
            assert state not in ("failed", "cancelled"), page.locator("#job-live").inner_text()
            if state == "succeeded":
                page.get_by_role("link", name="Reload the simulator").click()
                break
        elif page.locator("#replay-summary").count() and \
                f"Replay {previous}:" not in page.locator("#replay-summary").inner_text():
            break
        page.wait_for_timeout(500)

    page.locator("#simulator[data-ready]").wait_for(timeout=WAIT)  # its script follows
    with Session(get_engine(served.database_url)) as session:
        job = simulator.latest_replay(session)
        assert job is not None
        rows = list(session.exec(select(ReplayTurn).where(ReplayTurn.job_id == job.id)
                                 .order_by(ReplayTurn.id)))
    texts = {(t.session_id, t.message_id): t.text
             for t in TrackerStore(served.tracker_url).turns() if t.text}
    mine = {texts.get((r.session_id, r.turn_key)): r for r in rows}
    assert set(decided) <= set(mine)  # every question asked today was replayed
    assert page.locator('[data-figure="turns"]').inner_text() == str(len(rows))
    in_force = _thresholds(served, token)
    seeded = Calibration(boost=in_force["boost"], support=in_force["support"],
                         without_ranking=Thresholds(**in_force["without_ranking"]),
                         with_ranking=Thresholds(**in_force["with_ranking"]))
    # The replay decides each of them as the bot did a minute ago.
    for question, outcome in decided.items():
        assert decide_scored(scored_turn(mine[question]), seeded) == outcome, question

    def counts() -> dict[str, int]:
        return {d: int(page.locator(f'[data-count="simulated.{d}"]').inner_text())
                for d in ("answer", "clarify", "fallback")}

    def move(values: dict[str, dict[str, float]]) -> Calibration:
        for group, named in values.items():
            for name, value in named.items():
                page.locator(f'input[data-mirror="{group}.{name}"]').fill(str(value))
        return Calibration(boost=seeded.boost, support=seeded.support,
                           without_ranking=Thresholds(**values["without_ranking"]),
                           with_ranking=Thresholds(**values["with_ranking"]))

    tops = sorted(r.top1 for r in rows if r.top1 is not None)
    for low, high, margin in ((0.25, 0.5, 0.02), (0.5, 0.75, 0.1), (0.1, 0.9, 0.0)):
        pick = {"fallback": round(tops[int(low * (len(tops) - 1))], 3),
                "answer": round(tops[int(high * (len(tops) - 1))], 3), "margin": margin}
        asked = move({"without_ranking": pick, "with_ranking": pick})
        expected = [decide_scored(scored_turn(r), asked) for r in rows]
        before = [decide_scored(scored_turn(r), seeded) for r in rows]
        want = {d: expected.count(d) for d in ("answer", "clarify", "fallback")}
        assert counts() == want
        changed = sum(a != b for a, b in zip(expected, before, strict=True))
        assert page.locator('[data-count="changed"]').inner_text() == str(changed)
        # The server's own recount (the list of changed questions) agrees.
        table = page.locator("#changed-turns")
        page.wait_for_function(
            "(want) => { const t = document.getElementById('changed-turns');"
            " return t && t.dataset.serverAnswer === String(want); }",
            arg=want["answer"], timeout=WAIT)
        assert table.get_attribute("data-server-changed") == str(changed)
        assert table.get_attribute("data-server-fallback") == str(want["fallback"])

    # Saving: a question answered now falls back once its best score is under the fallback
    # threshold, and the bot's next reply to it says so.
    target = next(q for q, outcome in decided.items()
                  if outcome == "answer" and not mine[q].exact)
    row = mine[target]
    group = "with_ranking" if row.has_ranking else "without_ranking"
    values = {g: dict(in_force[g]) for g in ("without_ranking", "with_ranking")}
    values[group]["fallback"] = round(row.top1 + 0.01, 3)
    values[group]["answer"] = max(values[group]["answer"], values[group]["fallback"])
    move(values)
    page.get_by_label("Why (kept in the history and the audit log)").fill("browser test")
    page.get_by_role("button", name="Save and put in force").click()  # confirmed by _watch
    deadline = time.monotonic() + WAIT / 1000
    while _thresholds(served, token)["revision"] == in_force["revision"]:
        assert time.monotonic() < deadline, "the setting was not saved"
        time.sleep(0.2)
    try:
        deadline = time.monotonic() + 15
        tries = 0
        while _decision(served.say(f"after-save-{tries}", target)) != "fallback":
            tries += 1
            assert time.monotonic() < deadline, "the bot never took the saved thresholds"
            time.sleep(0.5)
        assert _thresholds(served, token)["note"] == "browser test"
        page.reload()
        assert "browser test" in page.locator("#threshold-history").inner_text()
    finally:  # the stack's other tests expect the shipped thresholds
        restore = {g: in_force[g] for g in ("without_ranking", "with_ranking")}
        assert httpx.put(f"{served.api}/api/v1/thresholds", json=restore,
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
    deadline = time.monotonic() + 15
    while _decision(served.say("after-restore", target)) != "answer":
        assert time.monotonic() < deadline, "the restored thresholds never took effect"
        time.sleep(0.5)
    assert errors == []
    context.close()


def test_an_automatic_rollback_fires_on_a_seeded_rise_in_fallbacks(
        browser: object, console_stack: Served, other_tiny_model: Path) -> None:
    """An admin turns the automatic rollback on in the console; a promoted model whose first
    hours fall back far more than the same hours of the week before is rolled back by the
    watch, audited, and the dashboard and models page say so."""
    from admin_api.models import ModelVersion
    from tests.admin_api.test_promotion_watch import HOUR, _turn
    from tests.tracker_seed import DAY

    served = console_stack
    token = _staff_token(served, "rollo", role="admin")
    bearer = {"Authorization": f"Bearer {token}"}
    before = _production(served, token)
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    errors = _watch(page)
    _sign_in(page, served, token)
    page.get_by_role("link", name="Models", exact=True).click()
    page.get_by_label("Roll production back by itself on an alert").check()
    page.get_by_text("Automatic rollback is on").wait_for(timeout=WAIT)
    try:
        with Session(get_engine(served.database_url)) as session:
            new = registry.register(session, other_tiny_model)
            session.commit()
            key, new_id = new.id, new.model_id
        assert httpx.post(f"{served.api}/api/v1/models/{key}/promote",
                          headers=bearer).status_code == 200
        with Session(get_engine(served.database_url)) as session:
            entry = session.get(ModelVersion, key)
            entry.promoted_at = utcnow() - timedelta(hours=2)  # as if promoted two hours ago
            session.add(entry)
            session.commit()
        conversations, ages = {}, {}
        for i in range(60):
            conversations[f"watch-before-{i}"] = [_turn(before["model_id"], f"wb-{i}", False)]
            ages[f"watch-before-{i}"] = 7 * DAY + HOUR - i
            conversations[f"watch-after-{i}"] = [_turn(new_id, f"wa-{i}", i % 10 < 4)]
            ages[f"watch-after-{i}"] = HOUR - i
        seed(served.tracker_url, conversations, ages,
             broker_url=served.env.get("HELPDESK_EVENT_BROKER_URL"),
             queue=served.env.get("HELPDESK_EVENT_QUEUE"))
        deadline = time.monotonic() + 60
        while _production(served, token)["model_id"] != before["model_id"]:
            assert time.monotonic() < deadline, "the watch never rolled back"
            time.sleep(0.5)
        audit = httpx.get(f"{served.api}/api/v1/audit",
                          params={"action": "model.auto_rollback"}, headers=bearer).json()
        assert [e["details"]["rolled_back_to"] for e in audit["items"]] == [before["model_id"]]
        page.get_by_role("link", name="Dashboard").click()
        alert = page.locator("#promotion-alert")
        assert f"After the promotion of {new_id}" in alert.inner_text()
        assert "rolled back automatically" in alert.inner_text()
        page.get_by_role("link", name="Models", exact=True).click()
        assert f"rolled back automatically from {new_id}" in page.locator(
            "#auto-rollback").inner_text()
    finally:
        httpx.put(f"{served.api}/api/v1/models/watch", json={"auto_rollback": False},
                  headers=bearer)
    assert errors == []
    context.close()
