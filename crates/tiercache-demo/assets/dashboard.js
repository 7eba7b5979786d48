// The dashboard: every widget for the chosen organisation, campaign, period and currency, refreshed
// on an interval, each showing which tier answered and how long it took; and a donation form.
"use strict";

const WIDGETS = [
  "total_donations", "organization_stats", "employee_participation", "donation_trends",
  "top_donors", "campaign_performance", "recent_activities",
];
const $ = (id) => document.getElementById(id);
let timer = null;
let refreshing = false;

const rangeLabel = (range) => range.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
const when = (seconds) => new Date(seconds * 1000).toLocaleString();

/** The filters chosen, as the widget API's query string. */
function query() {
  const q = new URLSearchParams();
  q.set("range", $("range").value);
  if ($("organization").value) q.set("organization_id", $("organization").value);
  if ($("campaign").value) q.set("campaign_id", $("campaign").value);
  if ($("currency").value) q.set("currency", $("currency").value);
  return q;
}

/** Keeps the choice in the address, so a reload or the other node's page shows the same view. */
function syncAddress(nodes) {
  const search = `?${query()}`;
  history.replaceState(null, "", search);
  for (const link of document.querySelectorAll("#node-links a")) {
    link.href = `${location.protocol}//${location.hostname}:${link.dataset.port}/${search}`;
  }
}

function campaignOptions(select, directory, organization, { all }) {
  const options = [];
  if (all) options.push(el("option", { value: "" }, "All campaigns"));
  for (const org of directory) {
    if (organization && String(org.id) !== organization) continue;
    const group = el("optgroup", { label: org.name });
    for (const c of org.campaigns) group.append(el("option", { value: c.id }, `${c.name} (#${c.id})`));
    options.push(group);
  }
  fill(select, options);
}

const renderers = {
  total_donations(body, d) {
    fill(body,
      el("p", { class: "figure", "data-count": d.count, "data-total-cents": d.total_cents }, money(d.total)),
      el("p", { class: "muted" }, `${count(d.count)} donations · average ${money(d.average)}`));
  },
  organization_stats(body, d) {
    const rows = [["Active campaigns", count(d.active_campaigns)], ["Employees", count(d.employees)],
      ["Donations", count(d.donations)], ["Raised", money(d.raised)], ["Donors", count(d.donors)]];
    fill(body, el("dl", { class: "figures" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
  },
  employee_participation(body, d) {
    const fraction = d.rate_permille / 1000;
    fill(body, gauge(fraction, percent(fraction), "#166534"),
      el("p", { class: "muted" }, `${count(d.participants)} of ${count(d.employees)} employees gave`));
  },
  donation_trends(body, d, answer) {
    // The service answers every day of the period, a day without donations as zero; each bar
    // stands at noon of its UTC day, over the whole period asked for.
    const seconds = (at) => Date.parse(at) / 1000;
    const given = d.filter((b) => b.count > 0).length;
    timeChart(body, {
      title: `Donations per day over ${count(d.length)} days, ${count(given)} with donations`,
      x: d.map((b) => b.day * 86400 + 43200),
      series: [{ label: "Donated per day", colour: "#0b5cad", values: d.map((b) => b.total) }],
      days: true,
      range: [seconds(answer.period.start), seconds(answer.period.end)],
      detail: (v, i) => `${money(v)} in ${count(d[i].count)} donation${d[i].count === 1 ? "" : "s"}`,
    });
  },
  top_donors(body, d) {
    fill(body, table(["Donor", "Total", "Donations"], d.map((r) => [r.donor, money(r.total), count(r.donations)]), [1, 2]));
  },
  campaign_performance(body, d) {
    fill(body, table(["Campaign", "Raised", "Of goal"], d.map((r) => [
      r.name, money(r.raised),
      el("span", {}, el("span", { class: "progress", role: "img", "aria-label": `${(r.goal_permille / 10).toFixed(1)} % of the goal` },
        el("span", { style: `width:${Math.min(100, r.goal_permille / 10)}%` })), ` ${(r.goal_permille / 10).toFixed(0)} %`),
    ]), [1]));
  },
  recent_activities(body, d) {
    fill(body, table(["When", "Donor", "Amount", "Campaign"],
      d.map((r) => [when(r.created_at), r.donor, `${money(r.amount)} ${r.currency}`, `#${r.campaign_id}`]), [2]));
  },
};

function table(headings, rows, numeric) {
  if (!rows.length) return el("p", { class: "muted" }, "Nothing in this period.");
  const cls = (i) => (numeric.includes(i) ? "num" : null);
  return el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, headings.map((h, i) => el("th", { scope: "col", class: cls(i) }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: cls(i) }, c)))))));
}

function render(widget, outcome) {
  const card = $(`w-${widget}`);
  const body = card.querySelector(".body");
  const meta = card.querySelector(".meta");
  if (outcome.status === "rejected") {
    card.dataset.source = "error";
    fill(body, el("p", { class: "muted" }, `Could not load: ${outcome.reason.message}`));
    fill(meta, el("span", { class: "tag error" }, "error"));
    return;
  }
  const answer = outcome.value;
  card.dataset.source = answer.source;
  renderers[widget](body, answer.data, answer);
  const source = answer.source === "loaded" ? "load" : answer.source;
  fill(meta, el("span", { class: `tag ${answer.source}`, title: "Which tier answered" }, source),
    `${answer.elapsed_ms.toFixed(2)} ms on ${answer.node}`);
}

// The dashboard's widgets as per-widget outcomes ({status, value | reason}, as Promise.allSettled
// gives them), from one /api/dashboard answer. A widget that failed carries its own error; the
// answer's status is then that error's, so the body is read whatever the status.
async function dashboard(q) {
  let answer;
  try {
    const response = await fetch(`/api/dashboard?${q}`, { headers: { accept: "application/json" } });
    answer = await response.json();
    if (!Array.isArray(answer.widgets)) throw new Error(answer.error || `HTTP ${response.status}`);
  } catch (error) {
    return WIDGETS.map(() => ({ status: "rejected", reason: error }));
  }
  const byWidget = new Map(answer.widgets.map((part) => [part.widget, part]));
  return WIDGETS.map((widget) => {
    const part = byWidget.get(widget);
    if (!part) return { status: "rejected", reason: new Error("not in the dashboard's answer") };
    if (part.error) return { status: "rejected", reason: new Error(part.error.error) };
    return {
      status: "fulfilled",
      value: {
        widget, source: part.source, data: part.data, range: answer.range, period: answer.period,
        filters: answer.filters, elapsed_ms: answer.elapsed_ms, node: answer.node,
      },
    };
  });
}

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  const started = performance.now();
  const q = query().toString();
  try {
    // One request for every widget: the node reads them through its cache in one call.
    const outcomes = await dashboard(q);
    outcomes.forEach((outcome, i) => render(WIDGETS[i], outcome));
    const failed = outcomes.filter((o) => o.status === "rejected").length;
    $("status").textContent = `Updated ${new Date().toLocaleTimeString()}: ${WIDGETS.length - failed} widgets in ` +
      `${(performance.now() - started).toFixed(0)} ms${failed ? `, ${failed} failed` : ""}.`;
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } finally {
    refreshing = false;
  }
}

function schedule() {
  clearInterval(timer);
  const seconds = Number($("interval").value);
  if (seconds > 0) timer = setInterval(refresh, seconds * 1000);
}

async function donate(event) {
  event.preventDefault();
  const result = $("donate-result");
  const button = $("donate-submit");
  button.disabled = true;
  result.textContent = "Recording…";
  try {
    const stored = await api("/api/donations", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        campaign_id: Number($("donate-campaign").value),
        amount: $("donate-amount").value.trim(),
        currency: $("donate-currency").value,
        donor: $("donate-donor").value,
      }),
    });
    result.textContent = `Recorded donation #${stored.id}: ${money(stored.amount)} ${stored.currency} to campaign ` +
      `#${stored.campaign_id} on ${stored.node} (cache invalidation ${stored.invalidation}).`;
    result.dataset.donation = stored.id;
    await refresh();
  } catch (error) {
    result.textContent = `Not recorded: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function init() {
  const params = new URLSearchParams(location.search);
  const [catalogue, directory, nodes] = await Promise.all([api("/api/widgets"), api("/api/organizations"), api("/api/nodes")]);
  fill($("range"), catalogue.ranges.map((r) => el("option", { value: r }, rangeLabel(r))));
  $("range").value = params.get("range") || "this_month";
  fill($("organization"), el("option", { value: "" }, "All organisations"),
    directory.map((o) => el("option", { value: o.id }, o.name)));
  $("organization").value = params.get("organization_id") || "";
  campaignOptions($("campaign"), directory, $("organization").value, { all: true });
  $("campaign").value = params.get("campaign_id") || "";
  $("currency").value = params.get("currency") || "";
  campaignOptions($("donate-campaign"), directory, "", { all: false });
  if ($("campaign").value) $("donate-campaign").value = $("campaign").value;

  $("this-node").textContent = nodes.this;
  fill($("node-links"), nodes.nodes.filter((n) => n.name !== nodes.this).map((n) =>
    el("a", { href: "#", "data-port": n.port, id: `link-${n.name}` }, `View on ${n.name}`)));
  syncAddress();

  $("organization").addEventListener("change", () => {
    campaignOptions($("campaign"), directory, $("organization").value, { all: true });
    syncAddress(); refresh();
  });
  for (const id of ["campaign", "range", "currency"]) {
    $(id).addEventListener("change", () => { syncAddress(); refresh(); });
  }
  $("interval").addEventListener("change", schedule);
  $("refresh").addEventListener("click", refresh);
  $("donate").addEventListener("submit", donate);
  await refresh();
  schedule();
}

init().catch((error) => {
  $("status").textContent = `The dashboard could not start: ${error.message}`;
  console.error(error);
});
