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

// New ticket: an import's file is uploaded as soon as it is chosen, with its progress on a
// <progress> bar; the form then carries only the AttachmentKey the server answered. Without
// this script the form posts the file itself, and the server stores it the same way.
function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KiB", "MiB", "GiB"];
  let scaled = bytes;
  let unit = "";
  for (unit of units) {
    scaled /= 1024;
    if (scaled < 1024) break;
  }
  return `${scaled.toFixed(1)} ${unit}`;
}

function uploadAhead(input) {
  const form = input.form;
  const key = form.querySelector("input[name=attachment]");
  const label = form.querySelector("input[name=file_label]");
  const csrf = form.querySelector("input[name=csrf_token]").value;
  const bar = document.getElementById(input.dataset.progress);
  const status = document.getElementById(input.dataset.status);
  const submits = form.querySelectorAll("button[type=submit]");
  const fieldName = input.name;
  let running = null;

  input.removeAttribute("name"); // the file travels ahead of the form, not with it

  const busy = (on) => submits.forEach((b) => { b.disabled = on; });
  const show = (percent) => {
    bar.hidden = false;
    bar.value = percent;
    bar.textContent = `${percent}%`;
  };
  const fail = (message, sendWithForm) => {
    running = null;
    busy(false);
    bar.hidden = true;
    status.textContent = message;
    // The network failed, not the server: the form may still carry the file itself.
    if (sendWithForm) input.name = fieldName;
  };

  input.addEventListener("change", () => {
    if (running) running.abort();
    key.value = "";
    label.value = "";
    input.removeAttribute("name");
    const file = input.files[0];
    if (!file) {
      bar.hidden = true;
      status.textContent = "";
      return;
    }
    if (file.size > Number(input.dataset.maxBytes)) {
      fail(`${file.name} is ${sizeText(file.size)}: larger than an upload may be.`, false);
      return;
    }
    const data = new FormData();
    data.append("csrf_token", csrf);
    data.append("file", file);
    const xhr = new XMLHttpRequest();
    running = xhr;
    xhr.open("POST", input.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) show(Math.floor((event.loaded * 100) / event.total));
    });
    xhr.upload.addEventListener("load", () => {
      if (running === xhr) status.textContent = `Storing ${file.name}…`;
    });
    xhr.addEventListener("load", () => {
      if (running !== xhr) return;
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch (_) {
        answer = null;
      }
      if (xhr.status === 200 && answer && answer.AttachmentKey) {
        running = null;
        key.value = answer.AttachmentKey;
        label.value = answer.Label;
        show(100);
        status.textContent = `Uploaded: ${answer.Label}`;
        busy(false);
      } else {
        const why = answer && answer.Message ? answer.Message : `the server answered ${xhr.status}`;
        fail(`Not uploaded: ${why}`, false);
      }
    });
    xhr.addEventListener("error", () => {
      if (running === xhr) fail(`Not uploaded: the connection failed. Create sends the file with the form.`, true);
    });
    busy(true);
    show(0);
    status.textContent = `Uploading ${file.name}…`;
    xhr.send(data);
  });

  // Sent while the file is still on its way: wait for it (this runs before the listener
  // above that marks a form as sent).
  window.addEventListener("submit", (event) => {
    if (event.target === form && running) {
      event.preventDefault();
      event.stopImmediatePropagation();
      status.textContent = "The file is still uploading: create the ticket once it is done.";
    }
  }, true);
}

document.querySelectorAll("input[type=file][data-upload-url]").forEach(uploadAhead);

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
