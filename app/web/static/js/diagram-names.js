/*
 * The page's translations of a diagram's names, shared by diagram.js (record pages) and modeler.js
 * (process pages). The page renders data-names='{"Triage incident": "分派事件"}' on the diagram's
 * section; window.processdeskNames.read(section) parses it ({} when absent or broken) and
 * .say(translated, name) gives the name in the page's language (the name itself when untranslated).
 * Loaded before either script (both are deferred, so they run in document order).
 */
(function () {
  "use strict";

  function read(section) {
    try {
      var found = JSON.parse(section.getAttribute("data-names") || "{}");
      return found && typeof found === "object" ? found : {};
    } catch (error) {
      return {};
    }
  }

  function say(translated, name) {
    var said = translated && Object.prototype.hasOwnProperty.call(translated, name) ? translated[name] : null;
    return typeof said === "string" && said ? said : name;
  }

  window.processdeskNames = { read: read, say: say };
})();
