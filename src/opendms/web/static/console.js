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

// SQL console: Ctrl+Enter (⌘+Enter on a Mac) in the SQL box runs it.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.isComposing) return;
  const box = event.target;
  if (!(box instanceof HTMLTextAreaElement) || !box.matches("[data-run-key]") || !box.form) return;
  event.preventDefault();
  if (box.form.dataset.sending !== "1") box.form.requestSubmit();
});

// A form htmx sends and keeps on the page (the SQL console's Run) may be sent again once its
// answer is in; the lock above holds while it is on its way.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (!(form instanceof HTMLFormElement) || !("rerun" in form.dataset)) return;
  delete form.dataset.sending;
  form.querySelectorAll("button[type=submit]").forEach((b) => {
    b.disabled = false;
    b.removeAttribute("aria-busy");
  });
});

// Paging a result replaces its section, the pressed button with it: keep the keyboard on the
// same button in the new page (or on the statement's heading when that button is gone).
let pagerPressed = null;
document.addEventListener("htmx:beforeRequest", (event) => {
  const elt = event.detail.elt;
  pagerPressed = elt instanceof HTMLElement && elt.dataset.pager
    ? { label: elt.dataset.pager, target: elt.getAttribute("hx-target") }
    : null;
});
document.addEventListener("htmx:afterSettle", () => {
  if (!pagerPressed) return;
  const section = document.querySelector(pagerPressed.target);
  const again = section && (section.querySelector(`[data-pager="${pagerPressed.label}"]`)
    || section.querySelector("h2[tabindex]"));
  pagerPressed = null;
  if (again) again.focus();
});

// htmx drops an error answer (a refused CSRF token, the store down): where a page marks a
// region data-swap-errors (the SQL console's results), the console's error message shows there.
document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  if (event.detail.xhr.status >= 400 && target instanceof Element
      && target.closest("[data-swap-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
