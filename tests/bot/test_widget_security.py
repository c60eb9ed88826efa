"""The chat widget against hostile content and hostile networks, in a real browser (Debian's
Chromium driven by Playwright) against a real ``helpdesk serve``.

- Hostile markdown (an answer body staff published, then a generated corpus fed through the
  widget's own receive path) never becomes markup: no ``on*`` attribute, no link but http(s)
  and mailto, none of script, img, iframe, svg or style; hovering every link runs nothing.
- The demo page's strict Content-Security-Policy (no inline script or style, no eval) governs,
  and the widget works and is styled under it without a single violation.
- socket.io with the client's default transports: one CORS header per response for an allowed
  origin, a refusal for a foreign one, and answers over long-polling when websockets are
  blocked.
"""

from __future__ import annotations

import http.server
import random
import re
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import Served, free_port

pytestmark = pytest.mark.slow
PWNED = "document.body.dataset.pwned=1"
ISSUE_PAYLOAD = ("Read [our guide](https://bank.example/(https://bank.example/onmouseover="
                 "document.body.dataset.pwned=document.domain//) first.")
KNOWN_VECTORS = [
    ISSUE_PAYLOAD,
    "[a](javascript:alert(1))", "[a](JaVaScRiPt:alert(1))", "[a](&#x6A;avascript:alert(1))",
    "[a](<javascript:alert(1)>)", "<javascript:alert(1)>", "[a]: javascript:alert(1)\n\n[a]",
    "[a](data:text/html,<script>alert(1)</script>)", "![x](https://bank.example/x.png)",
    f"<img src=x onerror={PWNED}>", f"<svg onload={PWNED}>", "<style>*{display:none}</style>",
    f"<iframe src=\"javascript:{PWNED}\"></iframe>", f"<script>{PWNED}</script>",
    f"[x](https://a.example/\"onmouseover=\"{PWNED})", f"https://a.example/'onmouseover='{PWNED}",
    f"**[x](https://a.example/) https://a.example/\" onfocus=\"{PWNED}**",
    f"`<img src=x onerror={PWNED}>`", f"<a href=\"javascript:{PWNED}\">x</a>",
    "[a](vbscript:msgbox(1)) [b](file:///etc/passwd)", "[mail](mailto:help@bank.example)",
]
PIECES = ["[", "]", "(", ")", "'", '"', "`", "*", "**", "_", "<", ">", "&", "&#39;", "&quot;",
          "&#x27;", "&lt;", "javascript:", "JavaScript:alert(1)", "data:text/html;base64,PHM+",
          "https://bank.example/", "http://x.example/(a)", "mailto:a@b.example", "www.x.example",
          f"onmouseover={PWNED}//", f" onerror={PWNED} ", "<img src=x ", "<script>",
          "</script>", "<iframe ", "<svg/onload=alert(1)>", "<style>", "<a href=", "x", "text",
          " ", "\n", "\n\n", "- ", "1. ", "    ", "> ", "# ", "![", "]: ", "\\", "|", "~~"]
FORBIDDEN_TAGS = ["script", "img", "iframe", "svg", "style", "object", "embed", "link", "meta",
                  "base", "form", "input", "math", "video", "audio", "table"]
AUDIT = """(forbidden) => {
  const root = document.getElementById('lepton-helpdesk').shadowRoot;
  const bad = [];
  const bodies = root.querySelectorAll('.markdown');
  for (const el of root.querySelectorAll('.markdown *')) {
    const tag = el.tagName.toLowerCase();
    if (forbidden.includes(tag)) bad.push(`<${tag}>`);
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const unsafe = name.startsWith('on') || name === 'style' || name === 'src';
      if (unsafe) bad.push(`${name} on <${tag}>`);
    }
    if (el.hasAttribute('href')) {
      const href = el.getAttribute('href');
      if (tag !== 'a' || !/^(https?:|mailto:)/i.test(href)) bad.push(`href ${href} on <${tag}>`);
      else if (el.getAttribute('rel') !== 'noopener noreferrer nofollow'
               || el.getAttribute('target') !== '_blank') bad.push(`rel/target of ${href}`);
    }
  }
  for (const link of root.querySelectorAll('.markdown a')) {
    for (const kind of ['mouseover', 'mouseenter', 'focus', 'mousemove']) {
      link.dispatchEvent(new MouseEvent(kind, { bubbles: true }));
    }
  }
  return { bad, bodies: bodies.length, links: root.querySelectorAll('.markdown a').length,
           pwned: document.body.dataset.pwned || null };
}"""
WATCH_CSP = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));"""


def corpus(count: int, seed: int = 20261204) -> list[str]:
    rng = random.Random(seed)
    return KNOWN_VECTORS + ["".join(rng.choice(PIECES) for _ in range(rng.randint(2, 18)))
                            for _ in range(count)]


def _publish(served: Served, question: str, body: str) -> None:
    admin = {"Authorization": f"Bearer {served.admin_token()}"}
    created = httpx.post(f"{served.api}/api/v1/answers", headers=admin, json={
        "title": "Our guide", "status": "published", "questions": [question], "body": body})
    assert created.status_code == 201, created.text


def test_hostile_markdown_never_becomes_markup_under_a_strict_csp(
        serve: Callable[..., Served], browser: object) -> None:
    served = serve()
    question = "Where is your guide to hostile links?"
    _publish(served, question, ISSUE_PAYLOAD)
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.add_init_script(WATCH_CSP)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    reply = page.goto(served.api + "/")
    policy = reply.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe" not in policy

    # Styled under the policy: the launcher is the widget's fixed, rounded button.
    launcher = page.get_by_role("button", name="Open the chat")
    assert launcher.evaluate("e => getComputedStyle(e).position") == "fixed"
    launcher.click()
    page.wait_for_timeout(1000)  # the action server polls the answers feed every 0.5 s
    page.get_by_label("Your message").fill(question)
    page.keyboard.press("Enter")
    answer = page.locator(".message.bot", has_text="first.")
    answer.wait_for(timeout=30_000)
    link = answer.locator("a").first
    link.hover()
    assert link.get_attribute("target") == "_blank"
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert all(name.lower() not in ("onmouseover", "onerror") for name in link.evaluate(
        "e => e.getAttributeNames()"))
    assert page.evaluate("() => document.body.dataset.pwned || null") is None

    # The corpus, through the widget's own rendering path (as bot and staff messages).
    texts = corpus(520)
    for start in range(0, len(texts), 40):
        page.evaluate("""(batch) => batch.forEach((text, i) =>
            window.__leptonHelpdesk.receive(i % 2 ? { text } : { text, staff: false }))""",
                      texts[start:start + 40])
    audit = page.evaluate(AUDIT, FORBIDDEN_TAGS)
    assert audit["bad"] == [], audit["bad"][:20]
    assert audit["bodies"] >= len(texts), audit  # every text was rendered
    assert audit["links"] > 50, audit  # and links of the allowed kinds survived
    assert audit["pwned"] is None and dialogs == []
    assert page.evaluate("() => window.__violations") == []
    context.close()


@pytest.fixture
def foreign_page() -> Iterator[Callable[[str], str]]:
    """A page on another origin (a different port) that embeds the widget of ``api``."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def make(served_api_and_rasa: str) -> str:
        api, rasa = served_api_and_rasa.split(" ")
        pages["/"] = (f'<!doctype html><title>elsewhere</title><script src="{api}/widget.js" '
                      f'data-socket-url="{rasa}" data-api-url="{api}"></script>').encode()
        return f"http://localhost:{port}/"

    yield make
    server.shutdown()


def test_socketio_default_transports_one_cors_header_and_polling_when_websockets_are_blocked(
        serve: Callable[..., Served], browser: object,
        foreign_page: Callable[[str], str]) -> None:
    served = serve()
    handshake = f"{served.rasa}/socket.io/?EIO=4&transport=polling"
    allowed = served.api
    reply = httpx.get(handshake, headers={"Origin": allowed})
    assert reply.status_code == 200, reply.text
    assert reply.headers.get_list("access-control-allow-origin") == [allowed]
    refused = httpx.get(handshake, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 400
    assert refused.headers.get_list("access-control-allow-origin") == []

    # Websockets blocked (a proxy that drops them): the widget answers over long-polling.
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.route_web_socket(re.compile(r".*/socket\.io/.*"), lambda socket: socket.close())
    page.goto(served.api + "/")
    page.get_by_role("button", name="Open the chat").click()
    page.get_by_label("Your message").fill("I am still waiting on my card?")
    page.keyboard.press("Enter")
    page.locator(".message.bot", has_text="working days").wait_for(timeout=30_000)
    transport = page.evaluate("() => window.__leptonHelpdesk.socket.io.engine.transport.name")
    assert transport == "polling"
    context.close()

    # Without the block, the default transports upgrade to a websocket.
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(served.api + "/")
    page.get_by_role("button", name="Open the chat").click()
    page.get_by_label("Your message").fill("hi")
    page.keyboard.press("Enter")
    page.locator(".message.bot", has_text="virtual assistant").wait_for(timeout=30_000)
    page.wait_for_function(
        "() => window.__leptonHelpdesk.socket.io.engine.transport.name === 'websocket'",
        timeout=15_000)
    context.close()

    # A page of a foreign origin cannot open a conversation.
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(foreign_page(f"{served.api} {served.rasa}"))
    page.get_by_role("button", name="Open the chat").click()
    page.get_by_text("The assistant is unreachable; retrying…").wait_for(timeout=30_000)
    assert page.evaluate("() => window.__leptonHelpdesk.confirmed") is False
    context.close()
