// Loaded first: keeps every script error, failed resource and console.error of the page in
// window.pageErrors, so the browser tests can require a page that reports none.
"use strict";
window.pageErrors = [];
window.addEventListener("error", (event) => {
  const target = event.target;
  if (target && target !== window && (target.src || target.href)) {
    window.pageErrors.push(`failed to load ${target.src || target.href}`);
  } else {
    window.pageErrors.push(`${event.message} at ${event.filename}:${event.lineno}`);
  }
}, true);
window.addEventListener("unhandledrejection", (event) => {
  window.pageErrors.push(`unhandled rejection: ${event.reason}`);
});
const consoleError = console.error.bind(console);
console.error = (...args) => { window.pageErrors.push(args.map(String).join(" ")); consoleError(...args); };
