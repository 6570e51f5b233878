// Generated forms: a field that the form requires only for some answers (JSON Schema if/then,
// e.g. resolution notes when the outcome is "resolved") shows its required mark as soon as those
// answers are chosen. The server decides on submit; this only keeps the page honest meanwhile.
// The conditions come from the data-required-when attribute (app/web/forms.py FieldView).
(function () {
  "use strict";

  function answer(form, name) {
    var controls = Array.prototype.filter.call(form.elements, function (c) { return c.name === name; });
    if (!controls.length) { return ""; }
    var first = controls[0];
    if (first.type === "radio") {
      var checked = controls.filter(function (c) { return c.checked; })[0];
      return checked ? checked.value : "";
    }
    if (first.type === "checkbox" && controls.length === 1) {
      return first.checked ? "true" : "false";
    }
    return (first.value || "").trim();
  }

  function holds(form, condition) {
    var passed = condition.tests.every(function (test) {
      var value = answer(form, test.field);
      return value === "" ? !test.needed : test.values.indexOf(value) !== -1;
    });
    return passed !== condition.negate;
  }

  function update(form) {
    form.querySelectorAll("[data-required-when]").forEach(function (field) {
      var conditions;
      try { conditions = JSON.parse(field.getAttribute("data-required-when")); } catch (e) { return; }
      var required = conditions.some(function (c) { return holds(form, c); });
      field.querySelectorAll(".required-when").forEach(function (mark) { mark.hidden = !required; });
      field.querySelectorAll("input, select, textarea").forEach(function (control) {
        if (required) { control.setAttribute("aria-required", "true"); }
        else { control.removeAttribute("aria-required"); }
      });
    });
  }

  document.querySelectorAll("form").forEach(function (form) {
    if (!form.querySelector("[data-required-when]")) { return; }
    form.addEventListener("change", function () { update(form); });
    form.addEventListener("input", function () { update(form); });
    update(form);
  });
})();
