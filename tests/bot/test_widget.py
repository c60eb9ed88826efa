"""The chat widget in a real browser (Debian's Chromium driven by Playwright) against a real
``helpdesk serve``: Rasa, the action server and the admin API."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Served

pytestmark = pytest.mark.slow
FAQ = "I am still waiting on my card?"


OUTBOX = "lepton-helpdesk:outbox"  # the widget's localStorage keys


def _user_events(served: Served) -> list[dict]:
    rows = sqlite3.connect(served.var_dir / "tracker.db").execute(
        "SELECT data FROM events WHERE type_name='user' ORDER BY id").fetchall()
    return [json.loads(r[0]) for r in rows]


def _user_texts(served: Served) -> list[str]:
    return [event["text"] for event in _user_events(served)]


def test_the_widget_in_a_browser(serve: Callable[..., Served], browser: object) -> None:
    served = serve()
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(served.api + "/")

    # Keyboard only: focus the launcher, open it, type, send with Enter.
    launcher = page.get_by_role("button", name="Open the chat")
    launcher.focus()
    page.keyboard.press("Enter")
    message_box = page.get_by_label("Your message")
    assert message_box.evaluate("e => e === e.getRootNode().activeElement")
    page.keyboard.type(FAQ)
    page.keyboard.press("Enter")

    # The curated answer, as one message, with its feedback buttons.
    bot = page.locator(".message.bot")
    bot.filter(has_text="working days").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Not helpful").click()
    page.get_by_label("What was wrong? (optional)").fill("Too slow <b>really</b>")
    page.get_by_role("button", name="Send feedback").click()
    page.get_by_text("Thanks for your feedback.").wait_for()
    rows = sqlite3.connect(served.var_dir / "admin.db").execute(
        "SELECT rating, answer_id, comment, text, intent FROM feedback").fetchall()
    assert rows == [("down", 101, "Too slow <b>really</b>", FAQ, "card_arrival")]

    # Asked again, the same answer gets a thumbs-up: the customer confirmed what the bot
    # understood, and their words wait for staff review as a training example.
    message_box.fill(FAQ)
    page.keyboard.press("Enter")
    bot.filter(has_text="working days").nth(1).wait_for(timeout=30_000)
    page.get_by_role("button", name="Helpful", exact=True).click()
    page.get_by_text("Thanks for your feedback.").nth(1).wait_for()
    examples = sqlite3.connect(served.var_dir / "admin.db").execute(
        "SELECT text, intent, source, status FROM training_example").fetchall()
    assert examples == [(FAQ, "card_arrival", "confirmed", "pending")]

    # HTML typed by a customer is shown as text and never runs.
    attack = "<img src=x onerror=alert(1)>"
    message_box.fill(attack)
    page.keyboard.press("Enter")
    page.locator(".message.user", has_text=attack).wait_for()
    assert page.locator(".log img").count() == 0

    # A question the bot cannot answer offers a person as quick replies; clicking one works.
    message_box.fill("zorblax quintessence flumph")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Yes, connect me").click(timeout=30_000)
    bot.filter(has_text="support team").last.wait_for(timeout=30_000)

    # History survives a reload.
    page.reload()
    page.get_by_role("button", name="Open the chat").click()
    page.locator(".message.user", has_text=FAQ).first.wait_for()
    assert page.locator(".message.bot", has_text="working days").count() == 2

    # Offline: the message waits, and is delivered exactly once when the network is back.
    context.set_offline(True)
    page.get_by_label("Your message").fill("sent while offline")
    page.keyboard.press("Enter")
    page.wait_for_timeout(1500)
    assert "sent while offline" not in _user_texts(served)
    context.set_offline(False)
    page.wait_for_function("() => navigator.onLine")
    deadline = 30_000
    while "sent while offline" not in _user_texts(served) and deadline > 0:
        page.wait_for_timeout(250)
        deadline -= 250
    page.wait_for_timeout(1500)
    assert _user_texts(served).count("sent while offline") == 1
    # It left the outbox only once the server acknowledged it, and it carries its own id.
    page.wait_for_function(f"() => localStorage.getItem('{OUTBOX}') === '[]'")
    [stored] = [e for e in _user_events(served) if e["text"] == "sent while offline"]
    message_id = stored["metadata"]["client_message_id"]
    assert len(message_id) == 32

    # An acknowledgement lost with the connection: the message is still in the outbox after a
    # reload, so the widget sends it again; the server recognises it and stores it once.
    page.evaluate(
        "([key, id]) => { const s = JSON.parse(localStorage.getItem(key.replace('outbox', "
        "'session'))); localStorage.setItem(key, JSON.stringify([{id, payload: "
        "'sent while offline', session: s}])); }", [OUTBOX, message_id])
    page.reload()
    page.wait_for_function(f"() => localStorage.getItem('{OUTBOX}') === '[]'", timeout=30_000)
    page.wait_for_timeout(1000)
    assert _user_texts(served).count("sent while offline") == 1

    # Escape closes the panel and gives focus back to the launcher.
    page.keyboard.press("Escape")
    assert page.get_by_role("dialog").count() == 0
    assert dialogs == []
    context.close()


def test_the_widget_on_a_phone_screen(serve: Callable[..., Served], browser: object) -> None:
    served = serve()
    context = browser.new_context(viewport={"width": 375, "height": 667})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(served.api + "/")
    page.get_by_role("button", name="Open the chat").click()
    panel = page.get_by_role("dialog")
    box = panel.bounding_box()
    assert box is not None and box["width"] == 375 and box["height"] == 667
    page.get_by_label("Your message").fill("hi")
    page.keyboard.press("Enter")
    page.locator(".message.bot", has_text="virtual assistant").wait_for(timeout=30_000)

    # A multi-paragraph markdown answer (published just now) is one message in our widget.
    admin = {"Authorization": f"Bearer {served.admin_token()}"}
    created = httpx.post(f"{served.api}/api/v1/answers", headers=admin, json={
        "title": "Travel notice", "status": "published",
        "questions": ["Do I need to tell you before I travel abroad?"],
        "body": "No need to tell us.\n\nYour card works abroad:\n\n- in shops\n- at ATMs\n\n"
                "See [our travel page](https://bank.example/travel) or "
                "[this](javascript:alert(1))."})
    assert created.status_code == 201, created.text
    # The action server polls the answers feed every 0.5 s; on a busy machine encoding the new
    # answer can take longer, so wait until the bot answers it in another conversation.
    deadline = time.monotonic() + 30
    while not any("No need to tell us." in (m.get("text") or "")
                  for m in served.say("travel-probe", "Do I need to tell you before I travel "
                                                      "abroad?")):
        assert time.monotonic() < deadline, "the published answer never went live"
        time.sleep(0.5)
    page.get_by_label("Your message").fill("Do I need to tell you before I travel abroad?")
    page.keyboard.press("Enter")
    # Rasa sends the paragraphs one by one before the payload that merges them: wait for the
    # merged message, then no paragraph may be left on its own.
    answer = page.locator(".message.bot", has_text="No need to tell us.")
    answer.filter(has_text="Your card works abroad").wait_for(timeout=30_000)
    assert answer.count() == 1
    assert answer.locator("li").count() == 2
    assert answer.locator("a").count() == 1  # only the https link became one
    assert answer.locator("a").get_attribute("href") == "https://bank.example/travel"

    # "Talk to a human", then a staff reply arrives live, labelled as the support team's.
    page.get_by_role("button", name="Talk to a human").click()
    page.locator(".message.bot", has_text="support team").wait_for(timeout=30_000)
    session_id = page.evaluate("() => window.__leptonHelpdesk.sessionId")
    reply = httpx.post(f"{served.api}/api/v1/handoff/{session_id}/reply", headers=admin,
                       json={"text": "Hello, Sam from the **support team** here."})
    assert reply.status_code == 202, reply.text
    staff = page.locator(".message.staff", has_text="Sam from the support team here.")
    staff.wait_for(timeout=15_000)
    assert staff.locator("strong").inner_text() == "support team"  # markdown, safely
    assert "Support team" in staff.inner_text()

    page.get_by_role("button", name="Start a new conversation").click()
    assert page.locator(".message").count() == 0
    context.close()
