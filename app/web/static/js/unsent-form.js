/* A form sent after its session ended, put back after its user signed in again
 * (app/web/unsent_forms.py): the values go into the form on this page that posts to the same
 * address, and the note above says so. Nothing is sent: the user checks and sends it.
 * Hidden, file and password fields are never filled (none were kept). */
(function () {
  "use strict";

  function start() {
    var data = document.getElementById("unsent-form");
    if (!data) {
      return;
    }
    var kept;
    try {
      kept = JSON.parse(data.textContent || "{}");
    } catch (error) {
      return;
    }
    var form = null;
    Array.prototype.forEach.call(document.forms, function (candidate) {
      var action = candidate.getAttribute("action");
      var path = action ? new window.URL(action, window.location.href).pathname : window.location.pathname;
      if (!form && (candidate.method || "").toLowerCase() === "post" && path === kept.action) {
        form = candidate;
      }
    });
    if (!form || !Array.isArray(kept.values)) {
      return;
    }
    /* A box is ticked exactly when the form sent it: an unticked box sends nothing, so one the
     * page draws ticked (a role the user had) but that was unticked before sending stays unticked. */
    Array.prototype.forEach.call(form.elements, function (element) {
      if ((element.type || "").toLowerCase() === "checkbox") {
        element.checked = kept.values.some(function (pair) {
          return pair[0] === element.name && pair[1] === element.value;
        });
      }
    });
    var used = {};
    kept.values.forEach(function (pair) {
      var name = pair[0];
      var value = pair[1];
      var fields = Array.prototype.filter.call(form.elements, function (element) {
        return element.name === name;
      });
      fields.forEach(function (element) {
        var type = (element.type || "").toLowerCase();
        if (type === "hidden" || type === "file" || type === "password" || type === "submit") {
          return;
        }
        if (type === "radio") {
          if (element.value === value) {
            element.checked = true;
          }
          return;
        }
        if (type === "checkbox") {
          return; /* set above */
        }
        if (element.tagName === "SELECT") {
          Array.prototype.forEach.call(element.options, function (option) {
            if (option.value === value) {
              option.selected = true;
            }
          });
          return;
        }
      });
      /* text fields: the n-th value of a name goes into its n-th text field */
      var texts = fields.filter(function (element) {
        var type = (element.type || "").toLowerCase();
        return element.tagName === "TEXTAREA" || (element.tagName === "INPUT" &&
          ["hidden", "file", "password", "submit", "radio", "checkbox", "button"].indexOf(type) < 0);
      });
      var index = used[name] || 0;
      if (index < texts.length) {
        texts[index].value = value;
        used[name] = index + 1;
      }
    });
    var note = document.getElementById("unsent-note");
    if (note) {
      note.hidden = false;
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
