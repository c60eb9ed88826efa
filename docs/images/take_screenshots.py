"""Screenshots for the README and docs/console.md, taken from the running product.

    make run        # in another terminal; it prints the admin token on its first run
    .venv/bin/python docs/images/take_screenshots.py --token lh_... \
        [--url http://127.0.0.1:8000] [--rasa http://127.0.0.1:5005]

Drives Debian's Chromium with Playwright, as the tests do. First the demo bank page with the
widget answering a question; then (with ``--token``, an admin's or a staff member's) it plays
a few customers through Rasa's REST channel (questions the bot cannot answer, and customers
handed to a person who ask about two topics while they wait), signs in to the console and
takes each screen; with an admin's token also the admins' screens (it runs a small retraining
job, a few minutes, to show one in progress and its model's report). Run it on a fresh
``var/``: it adds conversations to the one it finds.

For the dashboard it first writes 40 days of past conversations into the product's tracker
store (the environment's ``HELPDESK_*`` settings say where, as for the product), with one day
of many fallbacks, so that the charts and the drift flag have something to show.
``--only dashboard`` takes just that screen. For the threshold simulator (an admin's token) it
asks the bot a few dozen questions, replays today's questions and moves a threshold;
``--only simulator`` takes just that screen.
"""

from __future__ import annotations

import argparse
import os
import shutil
import uuid
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
QUESTION = "I still have not received my new card, when will it arrive?"
UNANSWERED = ["Do you sponsor the local football team?", "blorp zing my account",
              "Can I pay my taxes with you?"]
WAITING = ["Do you offer travel insurance?", "Can I buy travel insurance from you?",
           "Is travel insurance included with my account?",
           "Does my card come with travel insurance?", "Can I get travel insurance for my trip?",
           "Can I open a joint account with my partner?", "How do I open a joint account?",
           "Is it possible to have a joint account?", "I want a joint account with my wife",
           "Do you have joint accounts?"]
STAFF_REPLY = ("Travel insurance comes with **Premium** accounts: see Account > Plan in the app "
               "to switch.")


def _customers(api: str, rasa: str, token: str) -> str:
    """Customers as the product sees them; returns a conversation taken over by staff."""
    def say(sender: str, text: str) -> None:
        httpx.post(f"{rasa}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                   timeout=60).raise_for_status()

    for text in UNANSWERED:
        say(uuid.uuid4().hex, text)  # the channels accept only unguessable conversation ids
    waiting = [uuid.uuid4().hex for _ in WAITING]
    for sender, text in zip(waiting, WAITING, strict=True):
        say(sender, "/request_human")
        say(sender, text)
    taken = waiting[0]
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{api}/api/v1/handoff/{taken}/reply", headers=headers,
               json={"text": STAFF_REPLY}, timeout=30).raise_for_status()
    return taken


def _history(days: int = 40) -> None:
    """Past conversations, written as Rasa writes them, into the product's tracker store."""
    import random
    import sys

    sys.path.insert(0, str(HERE.parents[1]))
    from common.config import get_settings
    from tests.tracker_seed import DAY, Say, seed

    rng = random.Random(7)
    conversations: dict[str, list[Say]] = {}
    ages: dict[str, float] = {}
    for day in range(1, days + 1):
        fallback_share = 0.45 if day == 3 else 0.12
        model = "20261101-bank-v1" if day > 12 else "20261125-bank-v2"
        for i in range(rng.randint(35, 60)):
            roll = rng.random()
            if roll < fallback_share:
                turn = Say("blorp zing", "nlu_fallback", round(rng.uniform(0.1, 0.5), 2),
                           model, f"h{day}-{i}", actions=["utter_no_answer"],
                           bot=[{"text": "Sorry.",
                                 "metadata": {"utter_action": "utter_no_answer"}}])
            elif roll < fallback_share + 0.06:
                turn = Say("I want a person", "request_human", 0.95, model, f"h{day}-{i}",
                           actions=["utter_handoff"], pause=True,
                           bot=[{"text": "Passing you on.",
                                 "metadata": {"utter_action": "utter_handoff"}}])
            else:
                decision = "clarify" if rng.random() < 0.1 else "answer"
                turn = Say("When will my card arrive?", "card_arrival",
                           round(rng.uniform(0.55, 0.99), 2), model, f"h{day}-{i}",
                           actions=["action_answer"],
                           bot=[{"text": "Cards arrive in 5 to 7 working days.",
                                 "data": {"custom": {"answer_id": rng.choice([101, 102, 105]),
                                                     "decision": decision}}}])
            conversations[uuid.uuid4().hex] = [turn]
            ages[list(conversations)[-1]] = day * DAY - rng.uniform(0, 20000)
    seed(get_settings().tracker_store_url, conversations, ages)


def _dashboard(browser: object, api: str, token: str) -> None:
    _history()
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = _signed_in(context, api, token)
    page.goto(api + "/console/dashboard?range=30d")
    page.locator("canvas[data-chart]").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    _shot(page, "dashboard", full=True)
    context.close()


SIMULATED = ["When will my card arrive?", "my new card still hasn't come", "card delivery time",
             "What exchange rate do you use?", "is the rate different at weekends",
             "how do I close my account", "I want to delete my account",
             "can I use apple pay", "google pay setup", "how old do I have to be",
             "top up by bank transfer", "why was my top up declined", "is there a top up fee",
             "my card payment was declined", "the atm kept my card", "change my pin",
             "where can I change my PIN", "I was charged twice", "a payment I don't recognise",
             "how long does a transfer take", "can I get a virtual card", "what is the weather",
             "do you sell garden furniture", "recommend a film", "transfer to another country"]


def _simulator(browser: object, api: str, rasa: str, token: str) -> None:
    """Today's questions replayed, a threshold moved, and the questions that change."""
    for text in SIMULATED:
        httpx.post(f"{rasa}/webhooks/rest/webhook",
                   json={"sender": uuid.uuid4().hex, "message": text},
                   timeout=60).raise_for_status()
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = _signed_in(context, api, token)
    page.goto(api + "/console/simulator")
    page.get_by_role("button", name="Replay these days").click()
    page.get_by_role("link", name="Reload the simulator").wait_for(timeout=600_000)
    page.get_by_role("link", name="Reload the simulator").click()
    page.locator("#simulator[data-ready]").wait_for(timeout=30_000)
    exact = page.locator('input[data-mirror="with_ranking.fallback"]')
    exact.fill(str(round(float(exact.input_value()) + 0.25, 3)))
    page.locator("#changed-turns").wait_for(timeout=30_000)
    _shot(page, "simulator", full=True)
    context.close()


def _signed_in(context: object, api: str, token: str) -> object:
    """A page of ``context`` signed in to the console, accepting its confirmations."""
    page = context.new_page()  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(api + "/console")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Answers").wait_for(timeout=30_000)
    return page


def _shot(page: object, name: str, full: bool = False) -> None:
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.screenshot(path=str(HERE / f"console-{name}.png"), full_page=full)  # type: ignore[attr-defined]
    print(f"wrote {HERE / f'console-{name}.png'}")


def _console(browser: object, api: str, token: str, taken: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = _signed_in(context, api, token)

    def shot(name: str, full: bool = False) -> None:
        _shot(page, name, full)

    shot("answers")
    page.goto(api + "/console/answers/101")
    page.get_by_label("A customer's question").fill("my new card still hasn't come")
    page.get_by_role("button", name="Try it").click()
    page.locator("#try-decision").wait_for(timeout=60_000)
    shot("answer-editor", full=True)
    page.goto(api + "/console/try")
    page.get_by_label("A customer's question").fill("How long does a transfer take?")
    page.get_by_role("button", name="Try it").click()
    page.locator("#try-decision").wait_for(timeout=60_000)
    shot("try-it", full=True)
    page.goto(api + "/console/inbox?reason=fallback")
    page.locator("tr[data-row]").first.wait_for(timeout=30_000)
    page.locator("tr[data-row] details summary").first.click()
    page.locator(".detail .transcript").first.wait_for(timeout=30_000)
    shot("inbox")
    page.goto(api + "/console/proposals")
    page.get_by_role("button", name="Recompute now").click()
    page.locator("article.proposal").first.wait_for(timeout=180_000)
    shot("proposals", full=True)
    page.goto(api + "/console/training")
    shot("training")
    page.goto(api + "/console/conversations?handed_off=yes")
    shot("conversations")
    page.goto(f"{api}/console/conversations/{taken}")
    shot("transcript")
    page.goto(api + "/console/handoff")
    page.locator("tr[data-row]").first.wait_for(timeout=30_000)
    shot("handoff-queue")
    context.close()

    me = httpx.get(f"{api}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    if me.json().get("role") == "admin":
        _admin_screens(browser, api, token)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore[attr-defined]
    page = _signed_in(phone, api, token)
    page.goto(f"{api}/console/handoff/{taken}")
    page.get_by_label("Your reply").fill("Happy to help with anything else.")
    shot("handoff-phone")
    phone.close()


def _admin_screens(browser: object, api: str, token: str) -> None:
    """An admin's screens: a retraining job in progress (a small one: 10 examples per
    intent, not promoted), its model's report when it ends, people and the audit log."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = _signed_in(context, api, token)

    def shot(name: str, full: bool = False) -> None:
        _shot(page, name, full)

    page.goto(api + "/console/retraining")
    page.get_by_label("Seed examples per intent (empty: all)").fill("10")
    page.get_by_label("Promote if it passes the gate").uncheck()
    page.get_by_role("button", name="Start retraining").click()
    page.wait_for_url("**/console/retraining/*", timeout=30_000)
    page.locator("#job-status", has_text="running").wait_for(timeout=120_000)
    page.wait_for_function("() => Number(document.getElementById('job-progress').value) > 0.3",
                           timeout=600_000)
    shot("retraining-job")
    page.locator("#job-status", has_text="succeeded").wait_for(timeout=1_800_000)
    page.locator("a[href^='/console/models/']").first.click()
    page.locator("#report-title").wait_for(timeout=30_000)
    shot("model-report", full=True)
    page.goto(api + "/console/models")
    shot("models")
    page.goto(api + "/console/people")
    shot("people")
    page.goto(api + "/console/audit")
    shot("audit")
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rasa", default="http://127.0.0.1:5005")
    parser.add_argument("--token", default=os.environ.get("HELPDESK_TOKEN"),
                        help="an API token for the console screenshots (none: the widget only)")
    parser.add_argument("--only", choices=("dashboard", "simulator"),
                        help="take only this screen")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("HELPDESK_CHROMIUM") or shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        if args.only == "dashboard":
            _dashboard(browser, args.url, args.token)
            return
        if args.only == "simulator":
            _simulator(browser, args.url, args.rasa, args.token)
            return
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(args.url + "/")
        page.get_by_role("button", name="Open the chat").click()
        page.get_by_label("Your message").fill(QUESTION)
        page.keyboard.press("Enter")
        page.locator(".message.bot").last.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(HERE / "widget.png"))
        print(f"wrote {HERE / 'widget.png'}")
        if args.token:
            taken = _customers(args.url, args.rasa, args.token)
            _console(browser, args.url, args.token, taken)
            _dashboard(browser, args.url, args.token)
        browser.close()


if __name__ == "__main__":
    main()
