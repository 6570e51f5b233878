// "All on this page" for a list whose rows are ticked for one action (the Tasks page's bulk form):
// input[data-select-all=<name>] ticks or clears every checkbox of that name that belongs to the
// same form (inside it, or tied to it by form=), and shows itself as partly ticked when some are.
// Without this script the box stays hidden and each row is ticked by hand.
(function () {
  "use strict";

  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    var form = all.form;
    if (!form) { return; }
    var name = all.getAttribute("data-select-all");
    function rows() {
      return Array.prototype.filter.call(form.elements, function (element) {
        return element.type === "checkbox" && element.name === name && element !== all;
      });
    }
    function show() {
      var boxes = rows();
      var ticked = boxes.filter(function (box) { return box.checked; }).length;
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
    all.addEventListener("change", function () {
      rows().forEach(function (box) { box.checked = all.checked; });
      all.indeterminate = false;
    });
    rows().forEach(function (box) { box.addEventListener("change", show); });
    show();
    var holder = all.closest("[hidden]");
    if (holder) { holder.hidden = false; }
  });
})();
