// OpenDMS console: the little the pages need beyond htmx. No inline script runs (CSP).
"use strict";

// A form's buttons go quiet once it is sent: a double click sends it once. The server holds
// the same line with each form's one-time token.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
  if (form.dataset.sending === "1") {
    event.preventDefault();
    return;
  }
  form.dataset.sending = "1";
  setTimeout(() => {
    form.querySelectorAll("button[type=submit], input[type=submit]").forEach((b) => {
      b.disabled = true;
      b.setAttribute("aria-busy", "true");
    });
  }, 0);
}, true);

// htmx swaps a page back in from history without a reload: let its forms be sent again.
document.addEventListener("htmx:afterSwap", () => {
  document.querySelectorAll("form[data-sending]").forEach((f) => delete f.dataset.sending);
});

// A button that asks before it acts: data-confirm="Close this ticket?"
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-confirm]") : null;
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// Polled fragments (a ticket's progress) keep what the reader did: a <details> with an id
// stays open or closed across an htmx swap, and a log stays scrolled where it was, or
// follows new lines when it was at its end (as it is at first).
const keptOpen = new Map();
const keptScroll = new Map();
document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  if (!(target instanceof Element)) return;
  target.querySelectorAll("details[id]").forEach((d) => keptOpen.set(d.id, d.open));
  target.querySelectorAll("details[id] pre.log").forEach((pre) => {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    keptScroll.set(pre.closest("details").id, atEnd ? -1 : pre.scrollTop);
  });
});
function followLogs(root) {
  root.querySelectorAll("details[id] pre.log").forEach((pre) => {
    const id = pre.closest("details").id;
    const where = keptScroll.has(id) ? keptScroll.get(id) : -1;
    pre.scrollTop = where === -1 ? pre.scrollHeight : where;
  });
}
document.addEventListener("htmx:afterSettle", () => {
  keptOpen.forEach((open, id) => {
    const d = document.getElementById(id);
    if (d instanceof HTMLDetailsElement) d.open = open;
  });
  followLogs(document);
});
document.addEventListener("DOMContentLoaded", () => followLogs(document));
