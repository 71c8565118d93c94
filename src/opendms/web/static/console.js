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
