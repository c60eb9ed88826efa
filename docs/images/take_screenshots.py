"""Screenshots for the README, taken from the running product (``make run`` first).

    .venv/bin/python docs/images/take_screenshots.py [--url http://127.0.0.1:8000]

Drives Debian's Chromium with Playwright, as the tests do: the demo bank page, the widget
opened, one FAQ asked and answered.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUESTION = "I still have not received my new card, when will it arrive?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("HELPDESK_CHROMIUM") or shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(args.url + "/")
        page.get_by_role("button", name="Open the chat").click()
        page.get_by_label("Your message").fill(QUESTION)
        page.keyboard.press("Enter")
        page.locator(".message.bot").last.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(HERE / "widget.png"))
        browser.close()
    print(f"wrote {HERE / 'widget.png'}")


if __name__ == "__main__":
    main()
