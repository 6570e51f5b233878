/* Switching the page's language reloads it: what was typed into the page's forms would be lost
 * (QA: a half-written incident report came back empty in Chinese). Just before the switch is sent,
 * the typed values are kept in this tab's sessionStorage under the page's address; the page in the
 * new language puts them back into the same fields (matched by form and field name) and forgets
 * them. Never hidden fields (tokens), passwords or files. */
(function () {
  "use strict";

  var KEY = "processdesk:typed-before-language-switch";

  function typedFields(form) {
    return Array.prototype.filter.call(form.elements, function (element) {
      var type = (element.type || "").toLowerCase();
      return element.name && ["hidden", "password", "file", "submit", "button", "reset"].indexOf(type) < 0;
    });
  }

  function formKey(form, index) {
    return (form.getAttribute("action") || "") + "#" + index;
  }

  function keep() {
    var kept = {};
    var any = false;
    Array.prototype.forEach.call(document.forms, function (form, index) {
      if (form.classList.contains("lang-switch") || form.classList.contains("signout")) {
        return;
      }
      var values = typedFields(form).map(function (element) {
        var type = (element.type || "").toLowerCase();
        if (type === "checkbox" || type === "radio") {
          return [element.name, element.value, element.checked];
        }
        if (element.tagName === "SELECT") {
          return [element.name, Array.prototype.filter.call(element.options, function (o) { return o.selected; })
            .map(function (o) { return o.value; }), null];
        }
        if (element.value) {
          any = true;
        }
        return [element.name, element.value, null];
      });
      kept[formKey(form, index)] = values;
    });
    if (!any) {
      return;
    }
    try {
      window.sessionStorage.setItem(KEY, JSON.stringify({ path: window.location.pathname, forms: kept }));
    } catch (error) {
      /* storage full or refused: the switch goes on without it */
    }
  }

  function restore() {
    var raw;
    try {
      raw = window.sessionStorage.getItem(KEY);
      window.sessionStorage.removeItem(KEY);
    } catch (error) {
      return;
    }
    if (!raw) {
      return;
    }
    var kept;
    try {
      kept = JSON.parse(raw);
    } catch (error) {
      return;
    }
    if (!kept || kept.path !== window.location.pathname) {
      return;
    }
    Array.prototype.forEach.call(document.forms, function (form, index) {
      var values = kept.forms[formKey(form, index)];
      if (!values) {
        return;
      }
      var fields = typedFields(form);
      fields.forEach(function (element, at) {
        var value = values[at];
        if (!value || value[0] !== element.name) {
          return; /* the form changed shape: leave the field as the page drew it */
        }
        var type = (element.type || "").toLowerCase();
        if (type === "checkbox" || type === "radio") {
          element.checked = value[2] === true;
        } else if (element.tagName === "SELECT") {
          Array.prototype.forEach.call(element.options, function (option) {
            option.selected = value[1].indexOf(option.value) >= 0;
          });
        } else {
          element.value = value[1];
        }
      });
    });
  }

  function start() {
    restore();
    Array.prototype.forEach.call(document.querySelectorAll("form.lang-switch"), function (form) {
      form.addEventListener("submit", keep);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
