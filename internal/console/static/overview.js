// The Overview's charts (Chart.js, vendored), from the JSON the page carries.
(function () {
  "use strict";
  var tones = { ok: "#2f9e6b", info: "#8a94a6", info2: "#b7bfcc", warn: "#e0a12b", warn2: "#f2c66d", bad: "#d64545", bad2: "#8f2d2d" };
  function build() {
    var el = document.getElementById("overview-data");
    if (!el || !window.Chart) return;
    var d = JSON.parse(el.textContent);
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#4a5568";
    // Hours on the x axis read flat, every few hours; hovering an hour lists every series.
    var x = { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } };
    var hover = { mode: "index", intersect: false };
    function title(items) { return items.length ? "hour from " + items[0].label + " UTC" : ""; }
    function bars(id, series) {
      new Chart(document.getElementById(id), {
        type: "bar",
        data: { labels: d.hours, datasets: (series || []).map(function (s) { return { label: s.label, data: s.data, backgroundColor: tones[s.tone] || tones.info, borderRadius: 2 }; }) },
        options: { maintainAspectRatio: false, animation: false, interaction: hover,
          scales: { x: Object.assign({ stacked: true }, x), y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { position: "bottom" }, tooltip: { callbacks: { title: title } } } }
      });
    }
    bars("chart-calls", d.calls);
    bars("chart-crm", d.crm);
    bars("chart-webhooks", d.webhooks);
    new Chart(document.getElementById("chart-latency"), {
      type: "line",
      data: { labels: d.hours, datasets: (d.latency || []).map(function (s) {
        return { label: s.label, data: s.data.map(function (v) { return v < 0 ? null : v; }), borderColor: tones[s.tone], backgroundColor: tones[s.tone], spanGaps: false, tension: 0.2, pointRadius: 4, pointHoverRadius: 6 };
      }) },
      options: { maintainAspectRatio: false, animation: false, interaction: hover,
        scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } }, x: x },
        plugins: { legend: { position: "bottom" }, tooltip: { callbacks: { title: title, label: function (c) { return c.dataset.label + ": " + c.formattedValue + " ms"; } } } } }
    });
    document.body.setAttribute("data-charts", "drawn");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build); else build();
})();
