"""The staff console in a real browser (Debian's Chromium driven by Playwright) against the
whole product started by ``helpdesk serve`` (Rasa, the action server, the admin API), with a
customer in the chat widget in a second page. One stack serves the whole workflow; deadlines
are generous (a busy 2-core machine), the tight figures are ``bench/console.py``'s."""

from __future__ import annotations

import json
import re
from datetime import datetime

import httpx
import pytest
from sqlalchemy import text as sql

from admin_api.console.pages import CONTENT_SECURITY_POLICY
from admin_api.tracker import TrackerStore
from common.db import get_engine
from tests.conftest import (
    JOINT_ACCOUNT,
    TRAVEL_INSURANCE,
    Served,
)
from tests.tracker_seed import Say, seed

pytestmark = pytest.mark.slow
FAQ = "I am still waiting on my card?"
WAIT = 15_000  # ms
ACK = "a colleague will reply here shortly"


@pytest.fixture
def console(console_stack: Served) -> Served:
    """The product every console browser test shares (``tests/conftest.py``)."""
    return console_stack


def _staff_token(served: Served, name: str, role: str = "staff") -> str:
    """A new person's API token (staff unless ``role`` says otherwise)."""
    admin = {"Authorization": f"Bearer {served.admin_token()}"}
    user = httpx.post(f"{served.api}/api/v1/users", headers=admin,
                      json={"name": name, "role": role})
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
    return [e.get("text") or "" for e in TrackerStore(served.tracker_url).events(session_id)
            if e["type"] == "bot"]


def test_staff_curate_triage_and_take_over_in_the_console(console: Served,
                                                          browser: object) -> None:
    served = console
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
    customer.locator(".message.bot", has_text="pass you to a member of our support team").wait_for(
        timeout=30_000)
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


def _tracker(served: Served) -> str:
    return served.tracker_url


def _fallback(text: str, message_id: str) -> Say:
    return Say(text, "nlu_fallback", 0.2, "m1", message_id, actions=["utter_no_answer"],
               bot=[{"text": "Sorry, I don't have an answer for that yet.",
                     "metadata": {"utter_action": "utter_no_answer"}}])


def _admin(served: Served) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.admin_token()}"}


def _csrf(page: object) -> str:
    headers = page.evaluate("() => document.body.getAttribute('hx-headers')")  # type: ignore[attr-defined]
    return json.loads(headers)["X-CSRF-Token"]


def _watch(page: object) -> list[str]:
    """Console errors and alerts (a payload that ran would raise one); the console's own
    confirmations are accepted."""
    seen: list[str] = []

    def dialog(d: object) -> None:
        if d.type == "confirm":  # type: ignore[attr-defined]
            d.accept()  # type: ignore[attr-defined]
        else:
            seen.append(f"{d.type}: {d.message}")  # type: ignore[attr-defined]
            d.dismiss()  # type: ignore[attr-defined]

    page.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    page.on("dialog", dialog)  # type: ignore[attr-defined]
    return seen


def test_signing_in_and_out_an_expired_session_a_wrong_token_and_what_staff_may_not_do(
        console: Served, browser: object) -> None:
    seed(_tracker(console), {"keep-me": [_fallback("please keep this", "k-1")]},
         {"keep-me": 60.0})
    token = _staff_token(console, "lee")
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    errors = _watch(page)
    page.goto(console.api + "/console/inbox")
    assert page.url.endswith("/console/sign-in")
    page.get_by_label("API token").fill("lh_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="wrong, expired or revoked").wait_for(timeout=WAIT)
    _sign_in(page, console, token)

    # Staff see no erase button, and a direct post of it is refused and erases nothing.
    page.goto(console.api + "/console/conversations/keep-me")
    page.get_by_text("please keep this").wait_for(timeout=WAIT)
    assert page.get_by_role("button", name="Erase conversation").count() == 0
    csrf = _csrf(page)
    refused = page.request.post(console.api + "/console/conversations/keep-me/erase",
                                headers={"X-CSRF-Token": csrf})
    assert refused.status == 403 and "admin" in refused.text()
    # A write without the CSRF token is refused and changes nothing.
    forged = page.request.post(console.api + "/console/answers/102/unpublish")
    assert forged.status == 403
    assert httpx.get(console.api + "/api/v1/answers/102",
                     headers=_admin(console)).json()["status"] == "published"
    assert httpx.get(console.api + "/api/v1/conversations/keep-me",
                     headers=_admin(console)).status_code == 200

    # An expired session sends the browser back to the sign-in page.
    with get_engine(console.database_url).begin() as db:
        db.execute(sql('UPDATE console_session SET expires_at = :past WHERE user_id = '
                        '(SELECT id FROM "user" WHERE name = :name)'),
                   {"past": datetime(2000, 1, 1), "name": "lee"})
    page.goto(console.api + "/console/answers")
    page.get_by_role("heading", name="Sign in to the console").wait_for(timeout=WAIT)

    # Signing out ends the session: the console is closed until the next sign-in.
    _sign_in(page, console, token)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to the console").wait_for(timeout=WAIT)
    page.goto(console.api + "/console/training")
    assert page.url.endswith("/console/sign-in")
    # The refusals above are the only failed loads (the wrong token's page is a 401).
    assert all(re.search(r"status of 40[13]", e) for e in errors), errors
    context.close()


HOSTILE = '<img src=x onerror=alert(1)> my <script>alert(2)</script> card'


def test_three_inbox_items_are_triaged_with_the_keyboard_alone(console: Served,
                                                                browser: object) -> None:
    words = {"kb-1": HOSTILE, "kb-2": "blorp my card zing", "kb-3": "wibble flarn account"}
    seed(_tracker(console), {k: [_fallback(v, f"{k}-m")] for k, v in words.items()},
         {"kb-1": 3.0, "kb-2": 2.0, "kb-3": 1.0})  # the newest items, listed first
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    errors = _watch(page)
    _sign_in(page, console, _staff_token(console, "kit"))
    page.goto(console.api + "/console/inbox?reason=fallback")
    rows = page.locator("tr[data-row]")
    rows.filter(has_text="wibble flarn").wait_for(timeout=WAIT)
    assert page.locator("img").count() == 0  # the hostile words are text
    page.keyboard.press("?")
    page.get_by_role("heading", name="Keyboard shortcuts").wait_for(timeout=WAIT)
    page.keyboard.press("Escape")

    def focused_on(text: str) -> None:
        page.wait_for_function(
            "t => (document.activeElement.closest('[data-row]')?.innerText || '').includes(t)",
            arg=text, timeout=WAIT)

    page.keyboard.press("j")  # the newest first
    focused_on("wibble flarn")
    page.keyboard.press("i")
    page.get_by_text("Ignored: repeats of these words stay ignored.").wait_for(timeout=WAIT)
    focused_on("blorp my card")  # the selection moves on to the next item by itself
    page.keyboard.press("a")  # to the intent box of the row
    page.keyboard.type("card_arrival")
    page.keyboard.press("Enter")
    page.get_by_text("Assigned card_arrival").wait_for(timeout=WAIT)
    focused_on("onerror")
    page.keyboard.press("n")
    page.wait_for_url(re.compile(r".*/console/answers/\d+$"), timeout=WAIT)
    assert HOSTILE in page.get_by_label("Question variants").input_value()
    assert page.locator("img").count() == 0

    admin = _admin(console)
    examples = httpx.get(console.api + "/api/v1/training-examples", headers=admin,
                         params={"status": "pending"}).json()["items"]
    assert any(e["text"] == "blorp my card zing" and e["intent"] == "card_arrival"
               for e in examples)
    draft_id = int(page.url.rsplit("/", 1)[1])
    draft = httpx.get(f"{console.api}/api/v1/answers/{draft_id}", headers=admin).json()
    assert draft["status"] == "draft" and HOSTILE in draft["questions"]

    # The ignored words come back from another customer: merged, still ignored.
    seed(_tracker(console), {"kb-4": [_fallback("wibble flarn account", "kb-4-m")]},
         {"kb-4": 10.0})
    page.goto(console.api + "/console/inbox?reason=fallback")
    page.get_by_role("heading", name="Review inbox").wait_for(timeout=WAIT)
    assert page.locator("tr[data-row]", has_text="wibble flarn").count() == 0
    page.goto(console.api + "/console/inbox?reason=fallback&status=ignored")
    ignored = page.locator("tr[data-row]", has_text="wibble flarn")
    ignored.wait_for(timeout=WAIT)
    assert "×2" in ignored.inner_text()
    assert errors == [], errors
    context.close()


def test_a_thumbs_down_appears_without_reload_and_try_it_shows_a_new_variant_winning(
        console: Served, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    errors = _watch(page)
    _sign_in(page, console, _staff_token(console, "max"))
    page.goto(console.api + "/console/inbox?reason=thumbs_down")
    page.get_by_role("heading", name="Review inbox").wait_for(timeout=WAIT)
    loads = []
    page.on("load", lambda _p: loads.append(1))

    customer_context = browser.new_context()  # type: ignore[attr-defined]
    customer = customer_context.new_page()
    customer.goto(console.api + "/")
    customer.get_by_role("button", name="Open the chat").click()
    _ask(customer, FAQ)
    customer.get_by_role("button", name="Not helpful").first.wait_for(timeout=30_000)
    customer.get_by_role("button", name="Not helpful").first.click()
    customer.get_by_label("What was wrong? (optional)").fill("not my question")
    customer.get_by_role("button", name="Send feedback").click()
    customer.get_by_text("Thanks for your feedback.").wait_for(timeout=WAIT)
    page.locator("tr[data-row]", has_text=FAQ).wait_for(timeout=WAIT)
    assert loads == []  # it arrived without a reload
    customer_context.close()

    # Try it beside the editor: a new question variant changes the decision before publishing.
    question = "zorbly quandle vexation"
    page.goto(console.api + "/console/answers/105")
    page.get_by_label("A customer's question").fill(question)
    page.get_by_role("button", name="Try it").click()
    decision = page.locator("#try-decision")
    decision.wait_for(timeout=30_000)
    before = page.locator(".try-result").inner_text()
    assert not (decision.inner_text() == "answer" and "Answer 105," in before), before
    variants = page.get_by_label("Question variants")
    variants.fill(variants.input_value() + "\n" + question)
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved as revision").wait_for(timeout=WAIT)
    for _ in range(20):  # the console's retriever follows the database within a second or two
        page.get_by_role("button", name="Try it").click()
        page.wait_for_timeout(500)
        if decision.inner_text() == "answer" and "Answer 105," in page.locator(
                ".try-result").inner_text():
            break
    assert decision.inner_text() == "answer"
    assert "Answer 105," in page.locator(".try-result").inner_text()
    assert errors == [], errors
    context.close()


def test_the_hand_off_screen_works_at_phone_width(console: Served, browser: object) -> None:
    seed(_tracker(console), {"phone-1": [Say("I need a person please", "request_human", 0.9,
                                             "m1", "p-1", pause=True)]}, {"phone-1": 30.0})
    context = browser.new_context(viewport={"width": 390, "height": 844},  # type: ignore[attr-defined]
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = _watch(page)
    _sign_in(page, console, _staff_token(console, "pia"))
    page.goto(console.api + "/console/handoff")
    row = page.locator("tr[data-row]", has_text="I need a person please")
    row.wait_for(timeout=WAIT)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    row.get_by_role("button", name="Claim").click()
    page.wait_for_url("**/console/handoff/phone-1", timeout=WAIT)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    reply = page.get_by_label("Your reply")
    assert reply.bounding_box()["width"] > 250  # type: ignore[index]
    reply.fill("Hello from a phone")
    page.get_by_role("button", name="Send").click()
    page.locator(".turn", has_text="Hello from a phone").wait_for(timeout=WAIT)
    entries = httpx.get(console.api + "/api/v1/conversations/phone-1",
                        headers=_admin(console)).json()["entries"]
    assert entries[-1]["kind"] == "staff" and entries[-1]["text"] == "Hello from a phone"
    page.get_by_role("button", name="Give back to the bot").click()
    page.wait_for_url("**/console/handoff", timeout=WAIT)
    assert errors == [], errors
    context.close()


STAFF_REPLY = "Travel insurance comes with **Premium** accounts."


def test_unanswered_questions_on_two_topics_become_two_proposals_and_one_a_draft(
        console: Served, browser: object) -> None:
    """Customers handed to a person ask about two topics the answers do not cover; what they
    wrote while waiting is clustered, and one cluster becomes a draft in a few clicks."""
    conversations = {}
    for i, text in enumerate(TRAVEL_INSURANCE + JOINT_ACCOUNT):
        waiting = Say(text, "nlu_fallback", 0.3, "m1", f"w-{i}-2")
        if i == 0:
            waiting.bot = [{"text": STAFF_REPLY, "metadata": {"staff": "ada"}}]
        conversations[f"topic-{i}"] = [
            Say("/request_human", "request_human", 1.0, "m1", f"w-{i}-1", pause=True), waiting]
    seed(_tracker(console), conversations, {k: 120.0 - i for i, k in enumerate(conversations)})
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    errors = _watch(page)
    _sign_in(page, console, _staff_token(console, "noa"))
    page.goto(console.api + "/console/proposals")
    page.get_by_role("button", name="Recompute now").click()
    proposals = page.locator("article.proposal")
    proposals.nth(1).wait_for(timeout=120_000)  # the first run loads the encoder
    assert proposals.count() == 2
    texts = [set(p.locator("ul.questions li .customer-text").all_inner_texts())
             for p in proposals.all()]
    travel = next(i for i, t in enumerate(texts) if t & set(TRAVEL_INSURANCE))
    joint = 1 - travel
    assert len(texts[travel]) >= 4 and texts[travel] <= set(TRAVEL_INSURANCE)
    assert len(texts[joint]) >= 4 and texts[joint] <= set(JOINT_ACCOUNT)

    card = proposals.nth(travel)
    card.get_by_role("button", name="Use this reply").click()
    card.locator(".preview strong", has_text="Premium").wait_for(timeout=WAIT)
    card.get_by_label("Title").fill("Travel insurance")
    card.get_by_role("button", name="Make a draft answer").click()
    page.wait_for_url(re.compile(r".*/console/answers/\d+$"), timeout=WAIT)
    assert set(page.get_by_label("Question variants").input_value().splitlines()) == texts[
        travel]
    answer = httpx.get(f"{console.api}/api/v1/answers/{page.url.rsplit('/', 1)[1]}",
                       headers=_admin(console)).json()
    assert answer["status"] == "draft" and answer["body"] == STAFF_REPLY
    page.goto(console.api + "/console/proposals")
    page.locator("article.proposal").first.wait_for(timeout=WAIT)
    assert page.locator("article.proposal").count() == 1  # the drafted one is done
    assert errors == [], errors
    context.close()


def test_an_admin_issues_a_token_shown_once_and_revoking_it_locks_it_out_at_once(
        console: Served, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    errors = _watch(page)
    _sign_in(page, console, console.admin_token())
    page.get_by_role("link", name="People").click()
    page.get_by_label("Name").fill("zed")
    page.get_by_role("button", name="Add a person").click()
    page.get_by_role("link", name="zed").click()
    page.get_by_role("button", name="Issue a token").click()
    box = page.get_by_label("The token")
    box.wait_for(timeout=WAIT)
    token = box.input_value()
    me = httpx.get(console.api + "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["name"] == "zed"
    page.reload()
    assert token not in page.content() and page.get_by_label("The token").count() == 0
    page.get_by_role("button", name="Revoke").click()
    page.get_by_text("revoked: it, and the console sessions").wait_for(timeout=WAIT)
    assert httpx.get(console.api + "/api/v1/users/me",
                     headers={"Authorization": f"Bearer {token}"}).status_code == 401
    page.get_by_role("link", name="Audit").click()
    page.locator("td code", has_text="token.revoke").wait_for(timeout=WAIT)
    assert errors == [], errors
    context.close()
