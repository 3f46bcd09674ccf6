// The back office's analytics charts (uPlot), from the statistics the page embeds as JSON.
"use strict";

(function () {
  const block = document.getElementById("analytics-data");
  if (!block || !window.uPlot) return;
  const data = JSON.parse(block.textContent);
  const width = () => Math.min(900, document.querySelector(".container, body").clientWidth - 30);
  const days = (stats) => stats.days.map((d) => Date.parse(d.date + "T00:00:00Z") / 1000);

  function chart(id, series, x, ys, options = {}) {
    const target = document.getElementById(id);
    if (!target) return;
    const opts = { width: width(), height: 240, series: [{}, ...series], ...options };
    new uPlot(opts, [x, ...ys], target);
    target.dataset.drawn = "1";
  }

  if (data.kind === "video") {
    const s = data.stats;
    const x = days(s);
    chart("views-chart", [{ label: "Views", stroke: "#1f77b4" }, { label: "Unique viewers", stroke: "#ff7f0e" }],
      x, [s.days.map((d) => d.views), s.days.map((d) => d.unique_viewers)]);
    chart("watch-chart", [{ label: "Hours", stroke: "#2ca02c", fill: "rgba(44,160,44,0.1)" }],
      x, [s.days.map((d) => d.watch_seconds / 3600)]);
    chart("retention-chart", [{ label: "Still watching (%)", stroke: "#9467bd" }],
      s.totals.retention.map((_v, k) => k * 5),
      [s.totals.retention.map((v) => (v === null ? null : 100 * v))],
      { scales: { x: { time: false }, y: { range: [0, 100] } },
        axes: [{ label: "% of the video" }, { label: "% of views" }] });
    chart("quality-chart", [
      { label: "Median start (ms)", stroke: "#d62728", scale: "ms" },
      { label: "Rebuffering (%)", stroke: "#8c564b", scale: "%" },
    ], x, [s.days.map((d) => d.median_ttff_ms), s.days.map((d) => (d.rebuffering_ratio === null ? null : 100 * d.rebuffering_ratio))],
    { axes: [{}, { scale: "ms", label: "ms" }, { scale: "%", side: 1, label: "%", grid: { show: false } }] });
  } else if (data.kind === "catalogue") {
    const top = data.stats.top_watch_time;
    if (top.length) {
      chart("top-chart", [{ label: "Watch time (h)", stroke: "#1f77b4", fill: "rgba(31,119,180,0.3)",
        paths: uPlot.paths.bars({ size: [0.6] }) }],
      top.map((_v, i) => i + 1), [top.map((v) => v.watch_seconds / 3600)],
      { scales: { x: { time: false } },
        axes: [{ values: (_u, ticks) => ticks.map((t) => (top[t - 1] ? top[t - 1].title.slice(0, 14) : "")) }, {}] });
    }
  }
})();
