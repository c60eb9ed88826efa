// Lepton Helpdesk chat widget: one script, no CDN.
//   <script src=".../widget.js" data-socket-url="https://bot.example" data-api-url="https://api.example"></script>
// Both URLs default to the page's own origin. It speaks Rasa's socket.io protocol unchanged
// (session_request / session_confirm / user_uttered / bot_uttered, session persistence on).
import { io } from "socket.io-client";
import { renderMarkdown } from "./markdown.js";
import { STYLE } from "./style.js";

const script = document.currentScript;
const origin = window.location.origin;
const CONFIG = {
  socketUrl: (script && script.dataset.socketUrl) || origin,
  apiUrl: ((script && script.dataset.apiUrl) || origin).replace(/\/$/, ""),
  title: (script && script.dataset.title) || "Chat with us",
};
const KEY = "lepton-helpdesk";
const TYPING_TIMEOUT_MS = 15000;

function load(name, fallback) {
  try {
    const value = window.localStorage.getItem(`${KEY}:${name}`);
    return value === null ? fallback : JSON.parse(value);
  } catch (error) {
    return fallback;
  }
}

function save(name, value) {
  try {
    window.localStorage.setItem(`${KEY}:${name}`, JSON.stringify(value));
  } catch (error) {
    // Private mode or a full quota: the conversation still works, only without history.
  }
}

// Session ids are unguessable (128 random bits, more than a UUID4's 122): the channel refuses
// shorter ones, since whoever knows an id can read that conversation's replies.
const ACK_TIMEOUT_MS = 30000; // a turn's reply comes first, then the acknowledgement

function newId() {
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function element(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text; // text, never HTML
  return node;
}

// The styles are a constructed stylesheet, not a <style> element: a host page's strict
// Content-Security-Policy (style-src 'self', no 'unsafe-inline') governs <style> elements, even
// inside a shadow root, but not stylesheets built through the CSSOM.
function adoptStyles(root) {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(STYLE);
  root.adoptedStyleSheets = [sheet];
}

class ChatWidget {
  constructor() {
    this.sessionId = load("session", null) || newId();
    save("session", this.sessionId);
    this.history = load(`history:${this.sessionId}`, []);
    this.outbox = load("outbox", []);
    this.sending = new Set(); // ids handed to the socket, not acknowledged yet
    this.confirmed = false;
    this.build();
    this.history.forEach((entry) => this.render(entry));
    this.connect();
    window.addEventListener("online", () => this.online());
    window.addEventListener("offline", () => this.setStatus("You are offline: messages will be sent when you are back."));
  }

  build() {
    this.host = element("div", { id: "lepton-helpdesk" });
    const root = this.host.attachShadow({ mode: "open" });
    this.launcher = element("button", { class: "launcher", "aria-expanded": "false", "aria-controls": "lh-panel", "aria-label": "Open the chat" }, CONFIG.title);
    this.panel = element("section", { id: "lh-panel", class: "panel", role: "dialog", "aria-label": "Chat with the bank's assistant", hidden: "" });
    const header = element("header");
    header.append(element("h2", {}, "Customer service"));
    this.humanButton = element("button", { class: "human", type: "button" }, "Talk to a human");
    this.resetButton = element("button", { class: "reset", type: "button", "aria-label": "Start a new conversation" }, "New");
    this.closeButton = element("button", { class: "close", type: "button", "aria-label": "Close the chat" }, "×");
    header.append(this.humanButton, this.resetButton, this.closeButton);
    this.log = element("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
    this.typing = element("div", { class: "typing", hidden: "", "aria-label": "The assistant is typing" });
    this.typing.append(element("span"), element("span"), element("span"));
    this.status = element("div", { class: "status", role: "status" });
    this.form = element("form", { class: "composer" });
    this.input = element("input", { type: "text", autocomplete: "off", maxlength: "1000", placeholder: "Type your question…", "aria-label": "Your message" });
    this.sendButton = element("button", { type: "submit", "aria-label": "Send" }, "Send");
    this.form.append(this.input, this.sendButton);
    this.panel.append(header, this.log, this.typing, this.status, this.form);
    adoptStyles(root);
    root.append(this.launcher, this.panel);
    document.body.appendChild(this.host);

    this.launcher.addEventListener("click", () => this.toggle());
    this.closeButton.addEventListener("click", () => this.toggle(false));
    this.resetButton.addEventListener("click", () => this.reset());
    this.humanButton.addEventListener("click", () => this.send("/request_human", "Talk to a human"));
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.toggle(false);
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (!text) return;
      this.input.value = "";
      this.send(text, text);
    });
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    if (open) this.input.focus();
    else this.launcher.focus();
  }

  connect() {
    // socket.io's default transports: long-polling first, then the upgrade to a websocket, so the
    // chat also works where proxies or networks block websockets.
    this.socket = io(CONFIG.socketUrl, { path: "/socket.io", reconnectionDelayMax: 5000 });
    this.socket.on("connect", () => {
      this.confirmed = false;
      this.socket.emit("session_request", { session_id: this.sessionId });
    });
    this.socket.on("session_confirm", () => {
      this.confirmed = true;
      this.setStatus("");
      this.flush();
    });
    this.socket.on("disconnect", () => {
      this.confirmed = false;
      this.sending.clear(); // unacknowledged messages go again on the next connection
      this.setStatus("Reconnecting…");
    });
    this.socket.on("connect_error", () => this.setStatus("The assistant is unreachable; retrying…"));
    this.socket.on("bot_uttered", (message) => this.receive(message || {}));
  }

  online() {
    if (this.socket.connected && this.confirmed) this.flush();
    else this.socket.connect();
  }

  // Messages go through the outbox, which survives a reload, and leave it only when the server
  // acknowledges that it stored them. Each carries its own id, so a message sent again (the
  // acknowledgement was lost with the connection) is recognised and never processed twice.
  send(payload, shown) {
    this.remember({ who: "user", text: shown });
    this.outbox.push({ id: newId(), payload, session: this.sessionId });
    save("outbox", this.outbox);
    this.flush();
  }

  flush() {
    if (!this.confirmed || !navigator.onLine) return;
    this.outbox = this.outbox.filter((item) => item.session === this.sessionId);
    save("outbox", this.outbox);
    for (const item of this.outbox) {
      if (this.sending.has(item.id)) continue;
      this.sending.add(item.id);
      this.showTyping(true);
      const frame = { message: item.payload, session_id: this.sessionId, message_id: item.id };
      this.socket.timeout(ACK_TIMEOUT_MS).emit("user_uttered", frame, (error, ack) => {
        this.sending.delete(item.id);
        if (!error && ack && ack.status === "in_flight") {
          setTimeout(() => this.flush(), ACK_TIMEOUT_MS / 6); // being processed: ask again
          return;
        }
        if (error) return; // no acknowledgement: sent again on the next connection
        this.outbox = this.outbox.filter((kept) => kept.id !== item.id);
        save("outbox", this.outbox);
      });
    }
  }

  receive(message) {
    this.showTyping(false);
    if (message.staff) {
      this.relabelLast("staff");
      return;
    }
    if (message.decision || message.answer_id) {
      this.attachAnswer(message);
      return;
    }
    if (typeof message.text === "string" && message.text) {
      const buttons = (message.quick_replies || message.buttons || []).map((b) => ({ title: b.title, payload: b.payload }));
      this.remember({ who: "bot", text: message.text, buttons });
    }
  }

  // Our answer action sends its text (which Rasa's socket.io channel splits at blank lines)
  // and then a payload with the ids feedback needs: the paragraphs become one message again,
  // joined as they were split, so the answer's markdown is whole (the body is sent once).
  attachAnswer(payload) {
    let index = this.history.length - 1;
    while (index >= 0 && this.history[index].who === "bot" && !this.history[index].payload) index -= 1;
    const parts = this.history.slice(index + 1);
    const buttons = parts.flatMap((p) => p.buttons || []);
    const text = parts.map((p) => p.text).join("\n\n");
    this.history = this.history.slice(0, index + 1);
    this.rerender();
    this.remember({ who: "bot", text, buttons, payload: {
      answer_id: payload.answer_id || null, message_id: payload.message_id || null, decision: payload.decision || null,
    } });
  }

  relabelLast(who) {
    for (let i = this.history.length - 1; i >= 0; i -= 1) {
      if (this.history[i].who === "bot") {
        this.history[i].who = who;
        break;
      }
    }
    save(`history:${this.sessionId}`, this.history);
    this.rerender();
  }

  remember(entry) {
    this.history.push(entry);
    save(`history:${this.sessionId}`, this.history);
    this.render(entry);
  }

  rerender() {
    this.log.replaceChildren();
    this.history.forEach((entry) => this.render(entry));
  }

  render(entry) {
    const bubble = element("div", { class: `message ${entry.who}` });
    if (entry.who === "user") {
      bubble.textContent = entry.text;
    } else {
      if (entry.who === "staff") bubble.append(element("span", { class: "label" }, "Support team"));
      const body = element("div", { class: "markdown" });
      body.append(renderMarkdown(entry.text)); // a sanitised fragment: see markdown.js
      bubble.append(body);
    }
    this.log.append(bubble);
    if (entry.buttons && entry.buttons.length) {
      const row = element("div", { class: "quick-replies", role: "group", "aria-label": "Suggested replies" });
      for (const button of entry.buttons) {
        const node = element("button", { type: "button" }, button.title);
        node.addEventListener("click", () => this.send(button.payload, button.title));
        row.append(node);
      }
      this.log.append(row);
    }
    if (entry.payload && entry.payload.decision === "answer" && entry.payload.message_id) {
      this.log.append(this.feedbackControls(entry));
    }
    this.log.scrollTop = this.log.scrollHeight;
  }

  feedbackControls(entry) {
    const box = element("div", { class: "feedback", role: "group", "aria-label": "Was this answer helpful?" });
    if (entry.rated) {
      box.append(element("span", { class: "thanks" }, "Thanks for your feedback."));
      return box;
    }
    const up = element("button", { type: "button", "aria-label": "Helpful" }, "👍");
    const down = element("button", { type: "button", "aria-label": "Not helpful" }, "👎");
    up.addEventListener("click", () => this.rate(entry, "up", null, box));
    down.addEventListener("click", () => {
      const form = element("form", { class: "comment" });
      const comment = element("textarea", { maxlength: "2000", rows: "2", "aria-label": "What was wrong? (optional)", placeholder: "What was wrong? (optional)" });
      const submit = element("button", { type: "submit" }, "Send feedback");
      form.append(comment, submit);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.rate(entry, "down", comment.value.trim() || null, box);
      });
      box.replaceChildren(form);
      comment.focus();
    });
    box.append(up, down);
    return box;
  }

  async rate(entry, rating, comment, box) {
    const body = { session_id: this.sessionId, message_id: entry.payload.message_id, rating, comment };
    if (entry.payload.answer_id) body.answer_id = entry.payload.answer_id;
    try {
      const reply = await fetch(`${CONFIG.apiUrl}/api/v1/feedback`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
      entry.rated = rating;
      save(`history:${this.sessionId}`, this.history);
      box.replaceChildren(element("span", { class: "thanks" }, "Thanks for your feedback."));
    } catch (error) {
      this.setStatus("Your feedback could not be sent; please try again.");
    }
  }

  reset() {
    this.sessionId = newId();
    save("session", this.sessionId);
    this.history = [];
    this.outbox = [];
    save("outbox", this.outbox);
    this.rerender();
    // A new socket.io connection leaves the old conversation's room.
    this.socket.disconnect();
    this.socket.connect();
    this.input.focus();
  }

  showTyping(on) {
    this.typing.hidden = !on;
    window.clearTimeout(this.typingTimer);
    if (on) this.typingTimer = window.setTimeout(() => { this.typing.hidden = true; }, TYPING_TIMEOUT_MS);
  }

  setStatus(text) {
    this.status.textContent = text;
  }
}

function start() {
  if (!window.__leptonHelpdesk) window.__leptonHelpdesk = new ChatWidget();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
