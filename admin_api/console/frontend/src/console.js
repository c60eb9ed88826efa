// The console's browser code. Pages are server-rendered; htmx swaps fragments in place. What
// is here is only what HTML attributes cannot say: keyboard triage, the hand-off notification,
// and the answer preview (the widget's own markdown renderer, loaded from /markdown.js).
// No inline script anywhere: the Content-Security-Policy forbids it, so behaviour hangs off
// data-* attributes.
import htmx from "htmx.org";

window.htmx = htmx;

// ---- keyboard: j/k move through a list, letters trigger the selected row's actions --------
function rows(list) {
  return Array.from(list.querySelectorAll("[data-row]"));
}

function select(list, row, focus = true) {
  rows(list).forEach((r) => r.classList.toggle("selected", r === row));
  if (row) {
    list.dataset.selected = row.id;
    if (focus) row.focus({ preventScroll: false });
    row.scrollIntoView({ block: "nearest" });
  }
}

function currentRow(list) {
  const active = document.activeElement && document.activeElement.closest("[data-row]");
  if (active && list.contains(active)) return active;
  return list.querySelector("[data-row].selected");
}

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable]") !== null;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const help = document.getElementById("shortcut-help");
  if (event.key === "?" && !typing(event.target)) {
    if (help) help.open ? help.close() : help.showModal();
    event.preventDefault();
    return;
  }
  if (event.key === "Enter" && event.target.matches("[data-enter]")) {
    const button = document.querySelector(event.target.getAttribute("data-enter"));
    if (button) {
      event.preventDefault();
      button.click();
    }
    return;
  }
  if (typing(event.target)) return;
  const list = document.querySelector("[data-keyboard-list]");
  if (!list) return;
  const all = rows(list);
  const row = currentRow(list);
  const at = row ? all.indexOf(row) : -1;
  if (event.key === "j") {
    select(list, all[Math.min(all.length - 1, at + 1)] || all[0]);
    event.preventDefault();
  } else if (event.key === "k") {
    select(list, all[Math.max(0, at - 1)] || all[0]);
    event.preventDefault();
  } else if (event.key === "x" && row) {
    const box = row.querySelector("input[type=checkbox]");
    if (box) box.click();
    event.preventDefault();
  } else if (row) {
    const action = row.querySelector(`[data-key="${CSS.escape(event.key)}"]`);
    if (action) {
      event.preventDefault();
      action.focus();
      action.click();
    }
  }
});

// After a row's action replaces it, keep the keyboard where it was: select the next row still
// to do (or the one before it); after a refresh of the whole list, the row selected before.
function sibling(start, step) {
  let row = start && start[step];
  while (row && !row.matches("[data-row]")) row = row[step];
  return row;
}

document.addEventListener("htmx:beforeRequest", (event) => {
  const row = event.target.closest && event.target.closest("[data-keyboard-list] [data-row]");
  if (row) row.closest("[data-keyboard-list]").dataset.acted = row.id;
});

document.addEventListener("htmx:afterSettle", (event) => {
  const list = document.querySelector("[data-keyboard-list]");
  if (!list || !list.contains(event.target) && !event.target.contains(list)) return;
  if (currentRow(list)) return;
  const acted = list.dataset.acted && document.getElementById(list.dataset.acted);
  const remembered = list.dataset.selected && document.getElementById(list.dataset.selected);
  const next = (acted && (sibling(acted, "nextElementSibling") || sibling(acted, "previousElementSibling")))
    || (remembered && remembered.matches("[data-row]") ? remembered : null)
    || list.querySelector("[data-row]");
  delete list.dataset.acted;
  if (next) select(list, next);
});

// New items arriving refresh the list, except while someone is typing in it: then a hint
// says so, and their Refresh (or their next action) brings the items in.
document.addEventListener("htmx:confirm", (event) => {
  const trigger = event.detail.triggeringEvent;
  if (!trigger || !/-changed$/.test(trigger.type)) return;
  const active = document.activeElement;
  if (active && event.target.contains(active) && typing(active)) {
    event.preventDefault();
    const hint = document.getElementById("list-hint");
    if (hint) hint.hidden = false;
  }
});

document.addEventListener("click", (event) => {
  const row = event.target.closest("[data-keyboard-list] [data-row]");
  // A click on a control in the row selects the row but leaves the focus in the control.
  const control = event.target.closest("input, textarea, select, button, a, summary, label");
  if (row) select(row.closest("[data-keyboard-list]"), row, !control);
  const opener = event.target.closest("[data-open-help]");
  if (opener) document.getElementById("shortcut-help").showModal();
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) closer.closest("dialog").close();
  const fill = event.target.closest("[data-fill]");
  if (fill) {
    const box = document.querySelector(fill.getAttribute("data-fill"));
    if (box) {
      box.value = fill.getAttribute("data-text") || "";
      box.dispatchEvent(new Event("input", { bubbles: true }));
      box.focus();
    }
  }
  const all = event.target.closest("[data-select-all]");
  if (all) {
    document.querySelectorAll(all.getAttribute("data-select-all")).forEach((box) => {
      box.checked = all.checked;
    });
  }
});

// ---- hand-off: a badge in the navigation, refreshed by htmx; a notification on a new one ---
const seen = { count: null };

function onBadge(badge) {
  const count = Number(badge.getAttribute("data-waiting") || 0);
  const newest = badge.getAttribute("data-newest") || "";
  const known = sessionStorage.getItem("lepton-handoff-newest") || "";
  badge.hidden = count === 0;
  document.title = (count ? `(${count}) ` : "") + document.title.replace(/^\(\d+\) /, "");
  const fresh = newest && newest !== known && (known !== "" || seen.count !== null);
  if (fresh && count >= 1) {
    const text = badge.getAttribute("data-newest-text") || "A customer is waiting for a person.";
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification("A customer is waiting", { body: text, tag: "lepton-handoff" });
    }
    document.body.dispatchEvent(new CustomEvent("lepton:handoff", { detail: { count, newest } }));
    const banner = document.getElementById("handoff-banner");
    if (banner) {
      banner.textContent = `New hand-off: ${text}`;
      banner.hidden = false;
    }
  }
  if (newest) sessionStorage.setItem("lepton-handoff-newest", newest);
  seen.count = count;
}

document.addEventListener("htmx:afterSettle", (event) => {
  const badge = document.getElementById("handoff-badge");
  if (badge && (event.target === badge || event.target.contains(badge))) onBadge(badge);
});

document.addEventListener("click", (event) => {
  if (!event.target.closest("[data-enable-notifications]")) return;
  if ("Notification" in window) {
    Notification.requestPermission().then((permission) => {
      event.target.textContent = permission === "granted" ? "Notifications on" : "Notifications blocked";
    });
  }
});

// ---- answer preview: exactly the widget's renderer --------------------------------------
function preview(source) {
  const target = document.querySelector(source.getAttribute("data-preview"));
  if (!target || !window.LeptonMarkdown) return;
  target.replaceChildren(window.LeptonMarkdown.renderMarkdown(source.value));
}

document.addEventListener("input", (event) => {
  if (event.target.matches("[data-preview]")) preview(event.target);
});

function renderAll(root) {
  root.querySelectorAll("[data-preview]").forEach(preview);
  root.querySelectorAll("[data-markdown]").forEach((node) => {
    if (!window.LeptonMarkdown || node.dataset.rendered) return;
    node.dataset.rendered = "1";
    node.replaceChildren(window.LeptonMarkdown.renderMarkdown(node.getAttribute("data-markdown")));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  renderAll(document);
  const badge = document.getElementById("handoff-badge");
  if (badge) onBadge(badge);
});
document.addEventListener("htmx:afterSettle", (event) => renderAll(event.target));

// Keep a long transcript's view at the newest turn when a page of older ones is added on top.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.requestConfig && event.detail.requestConfig.elt.matches("[data-older]")) {
    const log = event.detail.requestConfig.elt.closest("[data-transcript]");
    if (log) log.dataset.keepBottom = String(log.scrollHeight - log.scrollTop);
  }
});

// A token shown once: focusing its box selects it, ready to copy.
document.addEventListener("focusin", (event) => {
  if (event.target.matches("[data-select-on-focus]")) event.target.select();
});
