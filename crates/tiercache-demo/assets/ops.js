// The cache's own view: /api/status every 2 s, the stored history of snapshots, and the
// percentiles of the node's widget reads (which the node computes: /api/status/latency); charts
// over the last minutes.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
/** Live points kept: 15 minutes of 2 s polls. */
const KEEP = 450;
const live = [];

const dl = (rows) => el("dl", { class: "figures" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
const bytes = (n) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);

/** The node's p50/p95/p99 of widget reads over the last minute, as it computed them. */
function renderLatency(latency) {
  const ms = (v) => (v < 1 ? v.toFixed(2) : v.toFixed(1));
  const show = (p) => (p.at_most_ms === null ? `> ${ms(latency.largest_bound_ms)} ms` : `≤ ${ms(p.at_most_ms)} ms`);
  const rows = latency.percentiles.length
    ? latency.percentiles.map((p) => [`p${Math.round(p.quantile * 100)}`, show(p)])
    : [["p50", "no requests"], ["p95", "no requests"], ["p99", "no requests"]];
  fill($("latency"), el("div", { id: "latency-figures", "data-requests": latency.requests }, dl(rows)),
    el("p", { class: "muted" }, `${count(latency.requests)} reads over the last ${Math.round(latency.window_seconds)} s, ` +
      "by histogram bucket."));
}

function render(status) {
  const level = status.health.level;
  fill($("health"),
    gauge(status.health.score / 100, String(status.health.score), level === "healthy" ? "#166534" : level === "warning" ? "#8a4b00" : "#a11919"),
    el("p", { class: `level-${level}`, id: "health-level", "data-score": status.health.score }, `${level} (judged over ${status.health.window.replace("last_", "the last ")})`));
  fill($("alerts"), status.alerts.length
    ? el("ul", { class: "alerts" }, status.alerts.map((a) => el("li", { class: `level-${a.severity}` }, `${a.severity}: ${a.message}`)))
    : el("p", { class: "muted" }, "No alerts."));
  const minute = status.windows.last_1m;
  const r = minute.requests;
  fill($("traffic"), dl([
    ["Reads per second", (r.requests / Math.max(1, minute.seconds)).toFixed(1)],
    ["Hit rate", percent(r.hit_rate)], ["From L1", count(r.l1_hits)], ["From L2", count(r.l2_hits)],
    ["Stale (fail-safe)", count(r.stale_hits)], ["Misses (loads)", count(r.misses)], ["Errors", count(r.errors)],
    ["Mean response", `${r.mean_response_ms.toFixed(2)} ms`], ["Slowest", `${r.max_response_ms.toFixed(1)} ms`],
  ]));
  const l = minute.locks;
  fill($("locks"), dl([["Acquired", count(l.acquired)], ["Contended (waited for another node)", count(l.contended)],
    ["Failed", count(l.failed)], ["Failure rate", percent(l.failure_rate)]]));
  const c = status.coherence;
  fill($("coherence"), dl([
    ["Invalidations sent", count(status.invalidations.sent)], ["Invalidations received", count(status.invalidations.received)],
    ["Gaps detected", count(c.gaps_detected)], ["Recovered by replay", count(c.replays)], ["Recovered by dropping L1", count(c.l1_drops)],
    ["Suspect now", c.suspect ? "yes" : "no"], ["Redis reachable", c.redis_unavailable ? "no" : "yes"],
  ]));
  const redis = status.redis;
  fill($("redis"), redis ? dl([
    ["Memory used", bytes(redis.used_memory)], ["Memory limit", redis.maxmemory ? bytes(redis.maxmemory) : "none"],
    ["Evicted keys", count(redis.evicted_keys)],
    ["Keyspace hit ratio", percent(redis.keyspace_hits / Math.max(1, redis.keyspace_hits + redis.keyspace_misses))],
  ]) : el("p", { class: "muted" }, "Redis figures could not be read."));
  const rows = Object.entries(minute.widgets).map(([name, w]) => [name, count(w.requests), percent(w.hit_rate),
    count(w.l1_hits), count(w.l2_hits), count(w.stale_hits), count(w.misses), w.mean_response_ms.toFixed(2), w.max_response_ms.toFixed(1)]);
  const numeric = [1, 2, 3, 4, 5, 6, 7, 8];
  const cls = (i) => (numeric.includes(i) ? "num" : null);
  fill($("widgets"), el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, ["Widget", "Reads", "Hit rate", "L1", "L2", "Stale", "Misses", "Mean ms", "Max ms"]
      .map((h, i) => el("th", { scope: "col", class: cls(i) }, h)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, row.map((v, i) => el("td", { class: cls(i) }, v))))))));
}

function charts(history) {
  // Stored snapshots (one a minute) first, then this page's own 2 s samples.
  const stored = history.map((s) => ({ t: s.taken_at, m: s.last_1m, inv: null }));
  const points = stored.concat(live).sort((a, b) => a.t - b.t);
  const x = points.map((p) => p.t);
  const values = (f) => points.map((p) => { const v = f(p); return Number.isFinite(v) ? v : null; });
  timeChart($("chart-hits"), {
    title: "Hit rate and L1 share over time, percent", x, unit: " %", detail: (v) => `${v.toFixed(1)} %`,
    series: [
      { label: "Hit rate", colour: "#166534", values: values((p) => p.m.requests.hit_rate * 100) },
      { label: "L1 share", colour: "#0b5cad", values: values((p) => p.m.requests.l1_hit_rate * 100) },
    ],
  });
  timeChart($("chart-rate"), {
    title: "Widget reads per second over time", x, detail: (v) => v.toFixed(1),
    series: [{ label: "Reads/s", colour: "#0b5cad", values: values((p) => p.m.requests.requests / Math.max(1, p.m.seconds)) }],
  });
  // Rates between this page's own samples: the stored snapshots carry no invalidation counts.
  const inv = [];
  for (let i = 1; i < live.length; i++) {
    const dt = live[i].t - live[i - 1].t;
    if (dt > 0) inv.push([live[i].t, (live[i].inv.sent - live[i - 1].inv.sent) / dt, (live[i].inv.received - live[i - 1].inv.received) / dt]);
  }
  timeChart($("chart-invalidations"), {
    title: "Invalidations per second, sent and received", x: inv.map((p) => p[0]),
    detail: (v) => v.toFixed(2), empty: "collecting…",
    series: [
      { label: "Sent", colour: "#8a4b00", values: inv.map((p) => p[1]) },
      { label: "Received", colour: "#0b5cad", values: inv.map((p) => p[2]) },
    ],
  });
  timeChart($("chart-latency"), {
    title: "Mean response time over time, milliseconds", x,
    detail: (v) => `${v.toFixed(2)} ms`,
    series: [{ label: "Mean response, ms", colour: "#a11919", values: values((p) => p.m.requests.mean_response_ms) }],
  });
}

let history = [];

async function poll() {
  try {
    // One after the other: with an admin token set, the first asks for it and the second uses it.
    const status = await api("/api/status");
    const latency = await api("/api/status/latency");
    live.push({ t: Date.now() / 1000, m: status.windows.last_1m, inv: status.invalidations });
    if (live.length > KEEP) live.shift();
    render(status);
    renderLatency(latency);
    charts(history);
    $("status").textContent = `Updated ${new Date().toLocaleTimeString()}; namespace ${status.namespace}, node id ${status.node_id}.`;
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (error) {
    $("status").textContent = `Could not read the status: ${error.message}`;
  }
}

async function init() {
  const nodes = await api("/api/nodes");
  $("this-node").textContent = nodes.this;
  fill($("node-links"), nodes.nodes.filter((n) => n.name !== nodes.this).map((n) =>
    el("a", { href: `${location.protocol}//${location.hostname}:${n.port}/ops`, id: `link-${n.name}` }, `${n.name}'s view`)));
  history = await api("/api/status/history?snapshots=60").catch(() => []);
  await poll();
  setInterval(poll, POLL_MS);
}

init().catch((error) => {
  $("status").textContent = `The page could not start: ${error.message}`;
  console.error(error);
});
