// Chart.js for the admin console's dashboards, bundled like the rest (no CDN). Every chart is
// drawn from the figures the page itself carries (a JSON script element), the same figures its
// tables show, so a chart never shows what the table does not.
import Chart from "chart.js/auto";

window.Chart = Chart;

const COLOURS = {
  answered: "#2e7d32", clarified: "#f9a825", fallback: "#c62828", handoff: "#6a1b9a",
  messages: "#1565c0", conversations: "#90caf9", up: "#2e7d32", down: "#c62828",
  band: "rgba(120, 120, 120, 0.18)", low: "#ef6c00",
};

const percent = (value) => Math.round(value * 1000) / 10;
// A day without messages has no rate: a gap in the line, not a fall to zero.
const dayRate = (day, name, whole = "messages") => (day[whole] ? percent(day[name]) : null);

function axis(title, isPercent) {
  const y = { beginAtZero: true, title: { display: true, text: title } };
  if (isPercent) {
    y.suggestedMax = 100;
    y.ticks = { callback: (v) => `${v} %` };
  }
  return { x: { title: { display: true, text: "day (UTC)" } }, y };
}

function line(label, data, colour, extra = {}) {
  return { label, data, borderColor: colour, backgroundColor: colour, tension: 0.2, ...extra };
}

// Counts per day, one bar per series: [label, key, colour].
function dailyBars(daily, series) {
  return {
    type: "bar",
    data: {
      labels: daily.map((x) => x.day),
      datasets: series.map(([label, key, colour]) => ({
        label, data: daily.map((x) => x[key]), backgroundColor: colour,
      })),
    },
    options: { scales: axis("count per day", false) },
  };
}

function driftChart(daily, name, label) {
  const band = daily.map((d) => d[`${name}_rate_band`]);
  const flagged = daily.map((d) => d[`${name}_rate_drift`]);
  const colour = name === "fallback" ? COLOURS.fallback : COLOURS.low;
  return {
    type: "line",
    data: {
      labels: daily.map((d) => d.day),
      datasets: [
        line("expected band: low", band.map((b) => (b ? percent(b[0]) : null)), COLOURS.band,
          { pointRadius: 0, borderWidth: 0, fill: false }),
        line("expected band: high", band.map((b) => (b ? percent(b[1]) : null)), COLOURS.band,
          { pointRadius: 0, borderWidth: 0, fill: "-1", backgroundColor: COLOURS.band }),
        line(label, daily.map((d) => dayRate(d, `${name}_rate`)), colour, {
          pointRadius: flagged.map((f) => (f ? 7 : 3)),
          pointStyle: flagged.map((f) => (f ? "triangle" : "circle")),
          pointBackgroundColor: flagged.map((f) => (f ? "#000" : colour)),
        }),
      ],
    },
    options: { scales: axis("% of customer messages", true) },
  };
}

const BUILDERS = {
  volume: (d) => dailyBars(d.daily, [
    ["customer messages", "messages", COLOURS.messages],
    ["conversations", "conversations", COLOURS.conversations],
  ]),
  outcomes: (d) => ({
    type: "line",
    data: {
      labels: d.daily.map((x) => x.day),
      datasets: [
        line("answered", d.daily.map((x) => dayRate(x, "answer_rate")), COLOURS.answered),
        line("clarified", d.daily.map((x) => dayRate(x, "clarification_rate")), COLOURS.clarified),
        line("fallback", d.daily.map((x) => dayRate(x, "fallback_rate")), COLOURS.fallback),
      ],
    },
    options: { scales: axis("% of customer messages", true) },
  }),
  handoffs: (d) => ({
    type: "line",
    data: {
      labels: d.daily.map((x) => x.day),
      datasets: [line("handed off", d.daily.map((x) => dayRate(x, "handoff_rate", "conversations")), COLOURS.handoff)],
    },
    options: { scales: axis("% of conversations", true) },
  }),
  "drift-fallback": (d) => driftChart(d.daily, "fallback", "fallback share"),
  "drift-low_confidence": (d) => driftChart(d.daily, "low_confidence", "low-confidence share"),
  thumbs: (d) => dailyBars(d.daily, [
    ["thumbs up", "thumbs_up", COLOURS.up],
    ["thumbs down", "thumbs_down", COLOURS.down],
  ]),
  intents: (d) => ({
    type: "bar",
    data: {
      labels: d.summary.top_failing_intents.map((x) => x.intent),
      datasets: [{ label: "failures", data: d.summary.top_failing_intents.map((x) => x.failures), backgroundColor: COLOURS.fallback }],
    },
    options: { indexAxis: "y", scales: { x: { beginAtZero: true, title: { display: true, text: "count" } } } },
  }),
  confidence: (d) => ({
    type: "bar",
    data: {
      labels: d.summary.confidence_histogram.map((b) => `${b.from.toFixed(1)}–${b.to.toFixed(1)}`),
      datasets: [{ label: "customer messages", data: d.summary.confidence_histogram.map((b) => b.count), backgroundColor: COLOURS.messages }],
    },
    options: { scales: { x: { title: { display: true, text: "confidence" } }, y: { beginAtZero: true, title: { display: true, text: "count" } } } },
  }),
  models: (d) => ({
    type: "bar",
    data: {
      labels: ["answered", "clarified", "fallback", "handed off (per conversation)", "thumbs-down"],
      datasets: d.summary.per_model.map((m, i) => ({
        label: m.model_id,
        data: [m.answer_rate, m.clarification_rate, m.fallback_rate, m.handoff_rate, m.thumbs_down_rate].map(percent),
        backgroundColor: ["#1565c0", "#ef6c00", "#6a1b9a", "#2e7d32", "#795548"][i % 5],
      })),
    },
    options: { scales: { y: { beginAtZero: true, suggestedMax: 100, title: { display: true, text: "% of customer messages" }, ticks: { callback: (v) => `${v} %` } } } },
  }),
};

function draw() {
  const source = document.getElementById("dashboard-data");
  if (!source) return;
  const data = JSON.parse(source.textContent);
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const build = BUILDERS[canvas.dataset.chart];
    if (build) new Chart(canvas, build(data));
  });
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", draw);
} else {
  draw();
}
