// Offers as a field's user types, from an address of the site that answers {"items": [...]} for
// ?q=<what is typed>, after a pause and from a few characters on (an older answer arriving after
// a newer question is dropped). Two uses:
// - input[data-suggest][list] ("Requested for" on the start and catalog pages): the people the
//   words name, in the field's <datalist>, each as their user name with their display name and
//   e-mail address beside it (InstanceService.callers);
// - section[data-articles-for=<a field's id>][data-articles] (below a field with
//   "ui:suggestArticles", the incident's title): the published knowledge articles about what it
//   says, as links that open in a new tab so the form and what was typed stay; hidden when there
//   are none (KnowledgeService.related);
// - section[data-clashes-for=<a window's start field id>][data-clashes] (below a field with
//   "ui:scheduleCheck", a change's planned start): what the window typed in it and in its end
//   field (data-window-end) would clash with, on the configuration item typed in data-window-ci's
//   field or the record's (data-record): freezes and other changes, as links; hidden when nothing
//   (ScheduleService.preview).
// Without this script, or when a request fails, the fields are plain fields: what is typed is sent
// as it is and the server checks it. A page may load the script twice (both uses): each element
// is taken once.
(function () {
  "use strict";

  function whileTyping(field, address, fewest, pauseMs, show) {
    var timer = null;
    var asked = 0;
    var shown = null;

    function ask() {
      var text = field.value.trim();
      if (text === shown) { return; }
      if (text.length < fewest) {
        asked++;  // an answer still on its way is for words no longer there
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
      }).catch(function () { /* nothing offered: the field works as it is */ });
    }

    field.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, pauseMs);
    });
    return ask;
  }

  function taken(element) {
    if (element.hasAttribute("data-typing-ready")) { return true; }
    element.setAttribute("data-typing-ready", "");
    return false;
  }

  document.querySelectorAll("input[data-suggest][list]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list || taken(input)) { return; }
    whileTyping(input, input.getAttribute("data-suggest"), 2, 200, function (people) {
      list.replaceChildren();
      people.forEach(function (person) {
        var option = document.createElement("option");
        option.value = person.username;
        option.label = person.email ? person.display_name + " · " + person.email : person.display_name;
        option.textContent = option.label;
        list.appendChild(option);
      });
    });
  });

  document.querySelectorAll("section[data-articles-for][data-articles]").forEach(function (panel) {
    var field = document.getElementById(panel.getAttribute("data-articles-for"));
    var list = panel.querySelector("ul");
    if (!field || !list || taken(panel)) { return; }
    var ask = whileTyping(field, panel.getAttribute("data-articles"), 3, 400, function (articles) {
      list.replaceChildren();
      articles.forEach(function (article) {
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
      panel.hidden = articles.length === 0;
    });
    if (field.value.trim().length >= 3) { ask(); }  // a form sent back with its title kept
  });

  document.querySelectorAll("section[data-clashes-for][data-clashes]").forEach(function (panel) {
    var start = document.getElementById(panel.getAttribute("data-clashes-for"));
    var end = document.getElementById(panel.getAttribute("data-window-end"));
    var ci = panel.getAttribute("data-window-ci") ? document.getElementById(panel.getAttribute("data-window-ci")) : null;
    var list = panel.querySelector("ul");
    if (!start || !end || !list || taken(panel)) { return; }
    var timer = null;
    var asked = 0;

    function show(clashes) {
      list.replaceChildren();
      clashes.forEach(function (clash) {
        var item = document.createElement("li");
        var link = document.createElement("a");
        link.href = clash.url;
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = clash.text;
        item.appendChild(link);
        list.appendChild(item);
      });
      panel.hidden = clashes.length === 0;
    }

    function ask() {
      var from = start.value.trim();
      var to = end.value.trim();
      var mine = ++asked;
      if (from.length < 16 || to.length < 16) { show([]); return; }  // "YYYY-MM-DD hh:mm" at least
      var query = "?from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to) +
        "&number=" + encodeURIComponent(panel.getAttribute("data-record") || "") +
        (ci ? "&ci=" + encodeURIComponent(ci.value.trim()) : "");
      fetch(panel.getAttribute("data-clashes") + query, {
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (body) {
        if (mine !== asked) { return; }
        show(body && Array.isArray(body.items) ? body.items : []);  // a refused window: nothing to say
      }).catch(function () { /* nothing said: the server checks the window when the form is sent */ });
    }

    [start, end, ci].forEach(function (field) {
      if (!field) { return; }
      field.addEventListener("input", function () {
        window.clearTimeout(timer);
        timer = window.setTimeout(ask, 400);
      });
    });
    ask();  // a window already filled in: the planned one, or a form sent back
  });
})();
