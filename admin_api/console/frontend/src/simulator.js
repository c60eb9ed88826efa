// The threshold simulator's recount: every replayed question decided again, in the browser, as
// a slider moves (tens of thousands of questions take a millisecond or two). `decide` is
// retrieval.decision.decide_scored line for line; the page's tests compare the two. The
// changed questions themselves, with their words, come from the server (htmx).

const FALLBACK = "fallback";
const CLARIFY = "clarify";
const ANSWER = "answer";
const DECISIONS = [ANSWER, CLARIFY, FALLBACK];

function decide(top1, top2, ranked, exact, setting) {
  if (exact) return ANSWER;
  const t = ranked ? setting.with_ranking : setting.without_ranking;
  if (top1 === null || top1 < t.fallback) return FALLBACK;
  if (top1 < t.answer || (top2 !== null && top1 - top2 < t.margin)) return CLARIFY;
  return ANSWER;
}

function recount(data, setting) {
  const counts = { answer: 0, clarify: 0, fallback: 0 };
  const decisions = new Array(data.top1.length);
  for (let i = 0; i < data.top1.length; i += 1) {
    const d = decide(data.top1[i], data.top2[i], data.ranked[i] === 1, data.exact[i] === 1, setting);
    decisions[i] = d;
    counts[d] += 1;
  }
  return { counts, decisions };
}

function share(n, total) {
  return total ? `${(Math.round((1000 * n) / total) / 10).toFixed(1)} %` : "–";
}

function settingOf(form) {
  const setting = { without_ranking: {}, with_ranking: {} };
  form.querySelectorAll('input[type="range"]').forEach((input) => {
    const [group, name] = input.name.split(".");
    setting[group][name] = Number(input.value);
  });
  return setting;
}

function show(key, value) {
  const cell = document.querySelector(`[data-count="${key}"]`);
  if (cell) cell.textContent = String(value);
}

function start() {
  const source = document.getElementById("simulator-data");
  const form = document.getElementById("simulator");
  if (!source || !form) return;
  const data = JSON.parse(source.textContent);
  const total = data.top1.length;
  const before = recount(data, data.in_force);

  function update() {
    const after = recount(data, settingOf(form));
    let changed = 0;
    for (let i = 0; i < total; i += 1) if (after.decisions[i] !== before.decisions[i]) changed += 1;
    DECISIONS.forEach((d) => {
      show(`in_force.${d}`, before.counts[d]);
      show(`simulated.${d}`, after.counts[d]);
      const delta = after.counts[d] - before.counts[d];
      show(`change.${d}`, delta > 0 ? `+${delta}` : String(delta));
      const inForce = document.querySelector(`[data-share="in_force.${d}"]`);
      const simulated = document.querySelector(`[data-share="simulated.${d}"]`);
      if (inForce) inForce.textContent = share(before.counts[d], total);
      if (simulated) simulated.textContent = share(after.counts[d], total);
    });
    show("changed", changed);
  }

  // Each slider has an exact-number twin (without a name: the slider's value is what the form
  // sends); typing moves the slider, sliding rewrites the number. Both events bubble to the
  // form, whose htmx trigger fetches the changed questions.
  form.querySelectorAll("input[data-mirror]").forEach((exact) => {
    const slider = form.querySelector(`input[name="${exact.dataset.mirror}"]`);
    exact.addEventListener("input", () => {
      if (exact.value === "" || Number.isNaN(Number(exact.value))) return;
      slider.value = exact.value; // a value beyond the slider's range is clamped to it
      update();
    });
    exact.addEventListener("change", () => { exact.value = slider.value; });
    slider.addEventListener("input", () => {
      exact.value = slider.value;
      update();
    });
  });
  const reset = form.querySelector("[data-reset-thresholds]");
  if (reset) {
    reset.addEventListener("click", () => {
      form.querySelectorAll('input[type="range"]').forEach((slider) => {
        slider.value = slider.dataset.inForce;
        const exact = form.querySelector(`input[data-mirror="${slider.name}"]`);
        if (exact) exact.value = slider.dataset.inForce;
      });
      update();
      form.dispatchEvent(new Event("input", { bubbles: true }));
    });
  }
  update();
  form.dataset.ready = "true"; // the recount follows the sliders from now on
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
