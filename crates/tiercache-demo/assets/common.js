// Shared by the dashboard and the operations page: DOM and SVG builders, number formats, fetch.
// The charts over time are in charts.js.
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
const compactFormat = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
/** A number short enough for an axis: 1.2K, 35, 0.5. */
const compact = (n) => compactFormat.format(n);
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
