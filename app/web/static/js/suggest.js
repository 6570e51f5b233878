// A text field with data-suggest="<address>" (the start and catalog pages' "Requested for") offers
// people as its user types: after a short pause, with two characters or more, it asks the address
// (?q=<what is typed>) and lists the answer's people in the field's <datalist>, each as their user
// name with their display name and e-mail address beside it. The field stays a plain text field:
// without this script, or when the request fails, what is typed is sent as it is and the server
// checks it (InstanceService.caller_for).
(function () {
  "use strict";

  var PAUSE_MS = 200;
  var FEWEST = 2;

  function label(person) {
    return person.email ? person.display_name + " · " + person.email : person.display_name;
  }

  function attach(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var address = input.getAttribute("data-suggest");
    if (!list || !address) { return; }
    var timer = null;
    var asked = 0;
    var shown = null;

    function fill(items) {
      list.replaceChildren();
      items.forEach(function (person) {
        var option = document.createElement("option");
        option.value = person.username;
        option.label = label(person);
        option.textContent = label(person);
        list.appendChild(option);
      });
    }

    function ask() {
      var text = input.value.trim();
      if (text === shown) { return; }
      if (text.length < FEWEST) {
        shown = text;
        fill([]);
        return;
      }
      var mine = ++asked;
      fetch(address + "?q=" + encodeURIComponent(text), {
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (body) {
        // an older answer arriving after a newer question is dropped
        if (mine !== asked || !body || !Array.isArray(body.items)) { return; }
        shown = text;
        fill(body.items);
      }).catch(function () { /* the field still takes what is typed */ });
    }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, PAUSE_MS);
    });
  }

  document.querySelectorAll("input[data-suggest][list]").forEach(attach);
})();
