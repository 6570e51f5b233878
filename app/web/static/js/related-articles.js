// A form field whose UI schema says "ui:suggestArticles" (the incident's title) has a panel below
// it, section[data-articles-for=<the field's id>]: as its user types (after a pause, three characters
// or more) the panel asks its address (?q=<what is typed>) for the published knowledge articles
// about it and lists them as links that open in a new tab, so that the form and what was typed
// stay. No article, or a failed request: the panel stays hidden. Without this script the form
// works as before.
(function () {
  "use strict";

  var PAUSE_MS = 400;
  var FEWEST = 3;

  function attach(panel) {
    var field = document.getElementById(panel.getAttribute("data-articles-for"));
    var address = panel.getAttribute("data-articles");
    var list = panel.querySelector("ul");
    if (!field || !address || !list) { return; }
    var timer = null;
    var asked = 0;
    var shown = null;

    function show(items) {
      list.replaceChildren();
      items.forEach(function (article) {
        var item = document.createElement("li");
        var link = document.createElement("a");
        link.href = article.url;
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = article.title;
        var number = document.createElement("span");
        number.className = "article-number";
        number.textContent = " (" + article.number + ")";
        item.appendChild(link);
        item.appendChild(number);
        list.appendChild(item);
      });
      panel.hidden = items.length === 0;
    }

    function ask() {
      var text = field.value.trim();
      if (text === shown) { return; }
      if (text.length < FEWEST) {
        shown = text;
        show([]);
        return;
      }
      var mine = ++asked;
      fetch(address + "?q=" + encodeURIComponent(text), {
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (body) {
        if (mine !== asked || !body || !Array.isArray(body.items)) { return; }
        shown = text;
        show(body.items);
      }).catch(function () { /* nothing to offer: the form goes on as it is */ });
    }

    field.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, PAUSE_MS);
    });
    if (field.value.trim().length >= FEWEST) { ask(); }  // a form sent back with its title kept
  }

  document.querySelectorAll("section[data-articles-for]").forEach(attach);
})();
