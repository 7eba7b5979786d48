// Shared by the dashboard and the operations page: DOM and SVG builders, number formats, fetch.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

/** An element with attributes and children (strings become text nodes, never HTML). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An SVG element with attributes and children. */
function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const moneyFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const countFormat = new Intl.NumberFormat();
const money = (units) => moneyFormat.format(units);
const count = (n) => countFormat.format(n);
const percent = (fraction) => `${(fraction * 100).toFixed(1)} %`;

// The node's admin token (DEMO_ADMIN_TOKEN), when it has one: asked for once when a call is refused
// 401 or 403 (donating, the /ops data), kept for this tab only, and sent with every call after.
const TOKEN_KEY = "tiercache-demo-admin-token";
let tokenDeclined = false;

/** GET or POST JSON; rejects with the service's own error message on a non-2xx answer. */
async function api(path, options, retried = false) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = Object.assign({}, options && options.headers, token ? { authorization: `Bearer ${token}` } : {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON: reported below */ }
  if ((response.status === 401 || response.status === 403) && !retried && !tokenDeclined) {
    const given = window.prompt(response.status === 401
      ? "This node asks for its admin token (DEMO_ADMIN_TOKEN):"
      : "The admin token was refused. The node's admin token (DEMO_ADMIN_TOKEN):");
    if (given && given.trim()) {
      sessionStorage.setItem(TOKEN_KEY, given.trim());
      return api(path, options, true);
    }
    tokenDeclined = true;
  }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

/** Vertical bars over labelled points, with an accessible title. */
function bars(points, { width = 560, height = 160, title = "" } = {}) {
  const pad = { left: 8, right: 8, top: 10, bottom: 22 };
  const max = Math.max(1, ...points.map((p) => p.value));
  const inner = width - pad.left - pad.right;
  // At least 14 slots, so a period with a few days does not draw a few wall-wide bars.
  const step = inner / Math.max(points.length, 14);
  const chart = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  chart.append(svgEl("title", {}, title));
  points.forEach((p, i) => {
    const h = ((height - pad.top - pad.bottom) * p.value) / max;
    const bar = svgEl("rect", {
      x: (pad.left + i * step + step * 0.1).toFixed(1), y: (height - pad.bottom - h).toFixed(1),
      width: Math.max(1, step * 0.8).toFixed(1), height: h.toFixed(1), fill: "#0b5cad",
    });
    bar.append(svgEl("title", {}, `${p.label}: ${p.text || p.value}`));
    chart.append(bar);
  });
  if (points.length) {
    chart.append(svgEl("text", { x: pad.left, y: height - 6 }, points[0].label));
    chart.append(svgEl("text", { x: width - pad.right, y: height - 6, "text-anchor": "end" }, points[points.length - 1].label));
  }
  return chart;
}

/** A line over time: `series` is [{name, colour, points: [[t, v], ...]}]; t in seconds. */
function lines(series, { width = 560, height = 160, title = "", format = (v) => v.toFixed(1) } = {}) {
  const pad = { left: 44, right: 8, top: 10, bottom: 22 };
  const all = series.flatMap((s) => s.points);
  const chart = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  chart.append(svgEl("title", {}, title));
  if (all.length < 2) {
    chart.append(svgEl("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "collecting…"));
    return chart;
  }
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]));
  const vmax = Math.max(...all.map((p) => p[1])) || 1;
  const x = (t) => pad.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / vmax) * (height - pad.top - pad.bottom);
  chart.append(svgEl("line", { x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0), stroke: "#d5d9e0" }));
  chart.append(svgEl("text", { x: pad.left - 4, y: y(vmax) + 4, "text-anchor": "end" }, format(vmax)));
  chart.append(svgEl("text", { x: pad.left - 4, y: y(0), "text-anchor": "end" }, format(0)));
  chart.append(svgEl("text", { x: width - pad.right, y: height - 6, "text-anchor": "end" }, "now"));
  chart.append(svgEl("text", { x: pad.left, y: height - 6 }, `${Math.round((t1 - t0) / 60)} min ago`));
  for (const s of series) {
    if (s.points.length < 2) continue;
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    chart.append(svgEl("path", { d, fill: "none", stroke: s.colour, "stroke-width": 2 }));
  }
  return chart;
}

/** A half-circle gauge for a fraction between 0 and 1. */
function gauge(fraction, label, colour = "#0b5cad") {
  const f = Math.max(0, Math.min(1, fraction));
  const r = 70, cx = 90, cy = 85;
  const end = Math.PI * (1 - f);
  const arc = (to) => `M${cx - r},${cy} A${r},${r} 0 0 1 ${(cx + r * Math.cos(to)).toFixed(1)},${(cy - r * Math.sin(to)).toFixed(1)}`;
  const chart = svgEl("svg", { viewBox: "0 0 180 100", role: "img", "aria-label": label, class: "gauge" });
  chart.append(svgEl("title", {}, label));
  chart.append(svgEl("path", { d: arc(0), fill: "none", stroke: "#e4e7ec", "stroke-width": 14 }));
  if (f > 0) chart.append(svgEl("path", { d: arc(end), fill: "none", stroke: colour, "stroke-width": 14 }));
  chart.append(svgEl("text", { x: cx, y: cy - 8, "text-anchor": "middle", style: "font-size:22px;fill:#1b1f24;font-weight:650" }, label));
  return chart;
}

/** Replaces the children of `node`. */
function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
}
