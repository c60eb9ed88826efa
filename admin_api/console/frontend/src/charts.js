// Chart.js for the admin console's dashboards, bundled like the rest (no CDN).
import Chart from "chart.js/auto";

window.Chart = Chart;
