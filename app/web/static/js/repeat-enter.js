// A start form with "Repeat this request on a schedule" open (app/web/recurring_pages.py): Enter in
// one of the schedule's fields schedules the form ("Schedule it"), as the field belongs to that
// part, instead of sending it with the form's first button, which would start the process now.
(function () {
  "use strict";

  var part = document.getElementById("repeat");
  var button = document.getElementById("repeat-submit");
  if (!part || !button) { return; }
  part.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || event.isComposing || !target || target.tagName !== "INPUT") { return; }
    if (target.type === "checkbox" || target.type === "radio") { return; }
    event.preventDefault();
    if (typeof button.form.requestSubmit === "function") {
      button.form.requestSubmit(button);
    } else {
      button.click();
    }
  });
})();
