"""The staff console in a real browser (Debian's Chromium driven by Playwright) against the
whole product started by ``helpdesk serve`` (Rasa, the action server, the admin API), with a
customer in the chat widget in a second page. One stack serves the whole workflow; deadlines
are generous (a busy 2-core machine), the tight figures are ``bench/console.py``'s."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import httpx
import pytest

from admin_api.console.pages import CONTENT_SECURITY_POLICY
from tests.conftest import Served

pytestmark = pytest.mark.slow
FAQ = "I am still waiting on my card?"
WAIT = 15_000  # ms
ACK = "a colleague will reply here shortly"


def _staff_token(served: Served, name: str) -> str:
    admin = {"Authorization": f"Bearer {served.admin_token()}"}
    user = httpx.post(f"{served.api}/api/v1/users", headers=admin,
                      json={"name": name, "role": "staff"})
    assert user.status_code == 201, user.text
    token = httpx.post(f"{served.api}/api/v1/users/{user.json()['id']}/tokens", headers=admin,
                       json={"name": "console"})
    assert token.status_code == 201, token.text
    return token.json()["token"]


def _sign_in(page: object, served: Served, token: str) -> None:
    page.goto(served.api + "/console")  # type: ignore[attr-defined]
    page.get_by_label("API token").fill(token)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.get_by_role("heading", name="Answers").wait_for(timeout=WAIT)  # type: ignore[attr-defined]


def _ask(customer: object, text: str) -> None:
    box = customer.get_by_label("Your message")  # type: ignore[attr-defined]
    box.fill(text)
    box.press("Enter")


def _bot_texts(served: Served, session_id: str) -> list[str]:
    rows = sqlite3.connect(served.var_dir / "tracker.db").execute(
        "SELECT data FROM events WHERE type_name='bot' AND sender_id=? ORDER BY id",
        (session_id,)).fetchall()
    return [json.loads(r[0]).get("text") or "" for r in rows]


def test_staff_curate_triage_and_take_over_in_the_console(
        serve: Callable[..., Served], browser: object) -> None:
    served = serve()
    sam_token, kim_token = _staff_token(served, "sam"), _staff_token(served, "kim")
    errors: list[str] = []
    staff_context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    staff = staff_context.new_page()
    staff.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    staff.on("dialog", lambda dialog: dialog.accept())
    _sign_in(staff, served, sam_token)
    response = staff.goto(served.api + "/console/answers/101")
    assert response is not None
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert staff.context.cookies()[0]["httpOnly"] is True
    assert staff.evaluate("() => Object.keys(localStorage).length + "
                          "Object.keys(sessionStorage).filter(k => /token/i.test(k)).length") == 0

    # The preview is the widget's renderer; a save goes live for customers.
    body = staff.get_by_label("Body (markdown)")
    body.fill("EDITED in the console: cards arrive in **3** working days.\n\n<b>not html</b>")
    staff.locator("#preview strong", has_text="3").wait_for(timeout=WAIT)
    assert staff.locator("#preview b").count() == 0
    staff.get_by_role("button", name="Save").click()
    staff.get_by_text("Saved as revision 2").wait_for(timeout=WAIT)

    customer_context = browser.new_context()  # type: ignore[attr-defined]
    customer = customer_context.new_page()
    customer.goto(served.api + "/")
    customer.get_by_role("button", name="Open the chat").click()
    _ask(customer, FAQ)
    customer.locator(".message.bot", has_text="EDITED in the console").wait_for(timeout=30_000)

    # A colleague's conflicting save is shown, not lost.
    kim_context = browser.new_context()  # type: ignore[attr-defined]
    kim = kim_context.new_page()
    kim.on("dialog", lambda dialog: dialog.accept())
    _sign_in(kim, served, kim_token)
    kim.goto(served.api + "/console/answers/101")
    staff.get_by_label("Title").fill("Card delivery times")
    staff.get_by_role("button", name="Save").click()
    staff.get_by_text("Saved as revision 3").wait_for(timeout=WAIT)
    kim.get_by_label("Body (markdown)").fill("Kim's competing body")
    kim.get_by_role("button", name="Save").click()
    kim.get_by_text("someone saved this answer (revision 3)").wait_for(timeout=WAIT)
    assert kim.locator(".diff ins", has_text="Kim's competing body").count() == 1

    # Live hand-off: the queue updates and notifies without a reload.
    staff.goto(served.api + "/console/handoff")
    staff.get_by_text("Nobody is waiting.").wait_for(timeout=WAIT)
    _ask(customer, "<img src=x onerror=alert(1)> please")
    customer.locator(".message.bot").nth(1).wait_for(timeout=30_000)
    customer.get_by_role("button", name="Talk to a human").click()
    customer.locator(".message.bot", has_text="support team").wait_for(timeout=30_000)
    row = staff.locator("tr[data-row]")
    row.wait_for(timeout=WAIT)
    staff.locator("#handoff-banner", has_text="New hand-off").wait_for(timeout=WAIT)
    assert staff.locator("#handoff-badge").inner_text() == "1"
    assert staff.locator("img").count() == 0  # the customer's HTML stays text

    session_id = customer.evaluate("() => window.__leptonHelpdesk.sessionId")
    row.get_by_role("button", name="Claim").click()
    staff.wait_for_url(f"**/console/handoff/{session_id}", timeout=WAIT)
    kim.goto(f"{served.api}/console/handoff/{session_id}")
    assert kim.get_by_text("sam is handling this conversation").count() == 1
    assert kim.locator("#reply-form").count() == 0

    # The customer waiting hears one acknowledgement, never the bot's answers.
    _ask(customer, FAQ)
    customer.locator(".message.bot", has_text=ACK).wait_for(timeout=30_000)
    _ask(customer, "hello? anyone?")
    staff.locator(".turn.user", has_text="hello? anyone?").wait_for(timeout=WAIT)
    customer.wait_for_timeout(1000)
    assert customer.locator(".message.bot", has_text=ACK).count() == 1
    assert sum(ACK in t for t in _bot_texts(served, session_id)) == 1
    assert customer.locator(".message.bot", has_text="EDITED in the console").count() == 1

    staff.get_by_label("Your reply").fill("Hi, Sam here: **looking** into it.")
    staff.get_by_role("button", name="Send").click()
    customer.locator(".message.staff", has_text="Sam here").wait_for(timeout=WAIT)
    assert customer.locator(".message.staff strong").inner_text() == "looking"

    staff.get_by_role("button", name="Give back to the bot").click()
    staff.wait_for_url("**/console/handoff", timeout=WAIT)
    _ask(customer, FAQ)
    customer.locator(".message.bot", has_text="EDITED in the console").nth(1).wait_for(
        timeout=30_000)
    assert errors == [], errors
    for context in (staff_context, customer_context, kim_context):
        context.close()
