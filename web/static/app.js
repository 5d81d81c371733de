// autopkgtest results: progressive enhancements. Every page is complete without this file.
"use strict";

function humanDuration(s) {
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (h) return `${h}h ${pad(m)}m ${pad(sec)}s`;
  if (m) return `${m}m ${pad(sec)}s`;
  return `${sec}s`;
}

// Charts of the statistics page: the data is in the canvas' data-chart attribute.
function drawCharts() {
  if (typeof Chart === "undefined") return;
  const colours = { pass: "#198754", fail: "#dc3545", neutral: "#6c757d", tmpfail: "#fd7e14", error: "#6f42c1" };
  document.querySelectorAll("canvas.chart").forEach((canvas) => {
    const data = JSON.parse(canvas.dataset.chart);
    const datasets = Object.keys(colours).map((k) => ({
      label: k, data: data.map((d) => d[k]), backgroundColor: colours[k], stack: "runs",
    }));
    canvas.chart = new Chart(canvas, {
      type: "bar",
      data: { labels: data.map((d) => d.day), datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
                 scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
    canvas.dataset.drawn = "yes";
  });
}

// The running tests, refreshed from the API without reloading the page.
function refreshRunning() {
  const box = document.getElementById("running");
  if (!box || !box.dataset.refresh) return;
  const render = (tests) => {
    box.textContent = "";
    if (!tests.length) {
      const p = document.createElement("p");
      p.className = "text-muted";
      p.id = "none-running";
      p.textContent = "Nothing is running.";
      box.appendChild(p);
    }
    for (const t of tests) {
      const card = document.createElement("div");
      card.className = "card mb-2 running-test" + (t.stale ? " stale" : "");
      const body = document.createElement("div");
      body.className = "card-body py-2";
      const title = document.createElement("strong");
      const link = document.createElement("a");
      link.href = "/packages/" + encodeURIComponent(t.package);
      link.textContent = t.package;
      title.appendChild(link);
      body.appendChild(title);
      body.appendChild(document.createTextNode(` on ${t.release}/${t.arch}, running for ${humanDuration(t.duration)}` +
                                               (t.stale ? " (stale)" : "")));
      const tail = document.createElement("pre");
      tail.className = "logtail small mb-0";
      tail.textContent = t.logtail;
      body.appendChild(tail);
      card.appendChild(body);
      box.appendChild(card);
    }
    const count = document.getElementById("running-count");
    if (count) count.textContent = String(tests.length);
    box.dataset.refreshed = String(Date.now());
  };
  const tick = () => fetch(box.dataset.refresh, { headers: { Accept: "application/json" } })
    .then((r) => r.ok ? r.json() : Promise.reject(r.status))
    .then(render)
    .catch(() => {})
    .finally(() => setTimeout(tick, 3000));
  setTimeout(tick, 3000);
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  refreshRunning();
});
