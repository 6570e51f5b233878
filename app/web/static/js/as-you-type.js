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
//   (ScheduleService.preview). A window outside the CI's maintenance windows comes with the next one
//   that holds it ("window"): a button (its label in data-plan-label) puts it in the two fields.
// Without this script, or when a request fails, the fields are plain fields: what is typed is sent
// as it is and the server checks it. A page may load the script twice (both uses): each element
// is taken once.
(function () {
  "use strict";

  // Questions to a JSON address that answers {"items": [...]}, one at a time: an answer to an
  // older question is dropped, and a refused or failed one shows nothing. ask(null): nothing to
  // ask (too little typed), so nothing shown.
  function asker(address, show) {
    var asked = 0;
    return function ask(query) {
      var mine = ++asked;
      if (query === null) { show([]); return; }
      fetch(address + "?" + query, {
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (body) {
        if (mine === asked) { show(body && Array.isArray(body.items) ? body.items : []); }
      }).catch(function () {
        if (mine === asked) { show([]); }  // the field works as it is: the server checks what is sent
      });
    };
  }

  // Asks about what ``fields`` hold (``query()``: the question, or null) a pause after typing in
  // any of them stops, and not twice in a row about the same. Returns the check, to run it now.
  function afterTyping(fields, pauseMs, query, ask) {
    var timer = null;
    var last;
    function check() {
      var question = query();
      if (question === last) { return; }
      last = question;
      ask(question);
    }
    fields.forEach(function (field) {
      field.addEventListener("input", function () {
        window.clearTimeout(timer);
        timer = window.setTimeout(check, pauseMs);
      });
    });
    return check;
  }

  function words(field, fewest) {
    return function () {
      var text = field.value.trim();
      return text.length < fewest ? null : "q=" + encodeURIComponent(text);
    };
  }

  function taken(element) {
    if (element.hasAttribute("data-typing-ready")) { return true; }
    element.setAttribute("data-typing-ready", "");
    return false;
  }

  function link(href, text) {
    var anchor = document.createElement("a");
    anchor.href = href;
    anchor.target = "_blank";
    anchor.rel = "noopener";
    anchor.textContent = text;
    return anchor;
  }

  document.querySelectorAll("input[data-suggest][list]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list || taken(input)) { return; }
    afterTyping([input], 200, words(input, 2), asker(input.getAttribute("data-suggest"), function (people) {
      list.replaceChildren();
      people.forEach(function (person) {
        var option = document.createElement("option");
        option.value = person.username;
        option.label = person.email ? person.display_name + " · " + person.email : person.display_name;
        option.textContent = option.label;
        list.appendChild(option);
      });
    }));
  });

  document.querySelectorAll("section[data-articles-for][data-articles]").forEach(function (panel) {
    var field = document.getElementById(panel.getAttribute("data-articles-for"));
    var list = panel.querySelector("ul");
    if (!field || !list || taken(panel)) { return; }
    var check = afterTyping([field], 400, words(field, 3), asker(panel.getAttribute("data-articles"), function (articles) {
      list.replaceChildren();
      articles.forEach(function (article) {
        var item = document.createElement("li");
        var number = document.createElement("span");
        number.className = "article-number";
        number.textContent = " (" + article.number + ")";
        item.appendChild(link(article.url, article.title));
        item.appendChild(number);
        list.appendChild(item);
      });
      panel.hidden = articles.length === 0;
    }));
    if (field.value.trim().length >= 3) { check(); }  // a form sent back with its title kept
  });

  document.querySelectorAll("section[data-clashes-for][data-clashes]").forEach(function (panel) {
    var start = document.getElementById(panel.getAttribute("data-clashes-for"));
    var end = document.getElementById(panel.getAttribute("data-window-end"));
    var ci = panel.getAttribute("data-window-ci") ? document.getElementById(panel.getAttribute("data-window-ci")) : null;
    var list = panel.querySelector("ul");
    if (!start || !end || !list || taken(panel)) { return; }
    function typedWindow() {
      var from = start.value.trim();
      var to = end.value.trim();
      if (from.length < 16 || to.length < 16) { return null; }  // "YYYY-MM-DD hh:mm" at least
      return "from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to) +
        "&number=" + encodeURIComponent(panel.getAttribute("data-record") || "") +
        (ci ? "&ci=" + encodeURIComponent(ci.value.trim()) : "");
    }
    var check = afterTyping([start, end, ci].filter(Boolean), 400, typedWindow, asker(panel.getAttribute("data-clashes"), function (clashes) {
      list.replaceChildren();
      clashes.forEach(function (clash) {
        var item = document.createElement("li");
        item.appendChild(link(clash.url, clash.text));
        if (clash.window && clash.window.from && clash.window.to) {
          var plan = document.createElement("button");
          plan.type = "button";
          plan.className = "link-button plan-window";
          plan.textContent = (panel.getAttribute("data-plan-label") || "%(start)s – %(end)s")
            .replace("%(start)s", clash.window.from).replace("%(end)s", clash.window.to);
          plan.addEventListener("click", function () {
            start.value = clash.window.from;
            end.value = clash.window.to;
            check();  // ask again about the window now in the fields
            start.focus();
          });
          item.appendChild(document.createTextNode(" "));
          item.appendChild(plan);
        }
        list.appendChild(item);
      });
      panel.hidden = clashes.length === 0;
    }));
    check();  // a window already filled in: the planned one, or a form sent back
  });
})();
