// Create forms (start, catalog request, comment) and task forms are sent once: after the first submit their
// buttons are disabled and a second submit event is cancelled, so a double click sends one POST.
// The server is the real guard (a one-time token, app/services/submissions.py); this only spares
// the second request. A page restored from the back/forward cache gets its buttons back.
(function () {
  "use strict";

  function buttons(form) {
    return form.querySelectorAll("button[type=submit], input[type=submit]");
  }

  document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) { return; }
      if (form.getAttribute("data-sent") === "true") {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "true");
      form.setAttribute("aria-busy", "true");
      // Disabled after this event: the form's data (and the submitter) are already taken.
      window.setTimeout(function () {
        buttons(form).forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });

  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
      form.removeAttribute("data-sent");
      form.removeAttribute("aria-busy");
      buttons(form).forEach(function (b) { b.disabled = false; });
    });
  });
})();
