/*
 * The process diagram of a record page, drawn with bpmn-js's Viewer (static/vendor, from npm).
 *
 * The page renders <section class="diagram" hidden data-diagram-url="..." data-msg-*="...">; this
 * script shows it, fetches {xml, completed, current, failed} from the URL and marks the shapes with
 * CSS classes through the canvas's addMarker API: pd-completed, pd-current, pd-failed, and
 * pd-contains-current on the collapsed subprocesses around a current task (so the top level shows
 * where the work is; their drill-down buttons open the inside, where the markers are too). The
 * figure caption says the same in words. Texts come translated from the data-msg-* attributes; nothing is inline (CSP).
 * Without JavaScript the section stays hidden and the rest of the page is complete.
 */
(function () {
  "use strict";

  var MARKERS = { completed: "pd-completed", current: "pd-current", failed: "pd-failed" };
  var AROUND_CURRENT = "pd-contains-current";

  function say(section, text) {
    var status = section.querySelector(".diagram-status");
    if (status) {
      status.textContent = text;
    }
  }

  function fail(section, error) {
    section.classList.add("diagram-failed");
    section.setAttribute("data-state", "failed");
    say(section, section.getAttribute("data-msg-error") || "");
    if (window.console && error) {
      window.console.warn("diagram:", error);
    }
  }

  function unique(values) {
    var seen = {};
    return (values || []).filter(function (value) {
      if (typeof value !== "string" || seen[value]) {
        return false;
      }
      seen[value] = true;
      return true;
    });
  }

  /* The page's translations of the diagram's names: static/js/diagram-names.js. */
  var NAMES = window.processdeskNames;

  function nameOf(element, translated) {
    var bo = element && element.businessObject;
    var name = bo && bo.name ? String(bo.name).replace(/\s+/g, " ").trim() : "";
    return NAMES.say(translated, name);
  }

  /* Marks the shapes whose ids are in `ids`; returns the marked registry elements. */
  function mark(canvas, registry, ids, marker) {
    var marked = [];
    unique(ids).forEach(function (id) {
      var element = registry.get(id);
      if (element) {
        canvas.addMarker(element, marker);
        marked.push(element);
      }
    });
    return marked;
  }

  /* The collapsed subprocesses (and their shapes on the enclosing planes) around an element. */
  function markSurroundings(canvas, registry, element) {
    var parent = element.businessObject && element.businessObject.$parent;
    while (parent) {
      var shape = parent.id ? registry.get(parent.id) : null;
      if (shape && shape.type !== "bpmn:Process" && shape.type !== "bpmn:Collaboration") {
        canvas.addMarker(shape, AROUND_CURRENT);
      }
      parent = parent.$parent;
    }
  }

  function names(elements, translated) {
    return unique(elements.map(function (element) {
      return nameOf(element, translated);
    }).filter(Boolean)).join(", ");
  }

  function describe(section, completed, current) {
    var parts = [];
    var translated = NAMES.read(section);
    var done = names(completed, translated);
    var now = names(current, translated);
    if (done) {
      parts.push((section.getAttribute("data-msg-done") || "").replace("{names}", done));
    }
    parts.push(now ? (section.getAttribute("data-msg-now") || "").replace("{names}", now)
                   : section.getAttribute("data-msg-nothing-now") || "");
    return parts.join(" ");
  }

  /* Fits the diagram into the canvas, unless the canvas has no size (hidden, or being laid out
     again, as during a full-page screenshot): fitting then would divide by zero. */
  function fit(canvas, container) {
    if (!container.isConnected || container.clientWidth < 1 || container.clientHeight < 1) {
      return;
    }
    canvas.resized();
    var box = canvas.viewbox();
    if (box.outer.width > 0 && box.outer.height > 0 && box.inner.width > 0 && box.inner.height > 0) {
      canvas.zoom("fit-viewport", "auto");
    }
  }

  function fitOnResize(canvas, container) {
    var pending = false;
    var refit = function () {
      if (pending) {
        return;
      }
      pending = true;
      window.requestAnimationFrame(function () {
        pending = false;
        fit(canvas, container);
      });
    };
    if (typeof window.ResizeObserver === "function") {
      new window.ResizeObserver(refit).observe(container);
    } else {
      window.addEventListener("resize", refit);
    }
  }

  /* bpmn-js's own texts (the drill-down buttons' "Open {element}") in the page's language. */
  function translator(section) {
    var texts = { "Open {element}": section.getAttribute("data-msg-open") };
    return function (template, replacements) {
      var text = texts[template] || template;
      return text.replace(/{([^}]+)}/g, function (_match, key) {
        return replacements && key in replacements ? replacements[key] : "{" + key + "}";
      });
    };
  }

  /* A subprocess opened for the first time is fitted to the canvas, as the top level is; later
     visits keep where the reader left it (bpmn-js's drill-down remembers each level's view). */
  function fitNewLevels(viewer, canvas, container) {
    var seen = [canvas.getRootElement()];
    viewer.on("root.set", 500, function (event) {
      if (seen.indexOf(event.element) === -1) {
        seen.push(event.element);
        fit(canvas, container);
      }
    });
  }

  /* The diagram's XML with the names it draws in the page's language (the viewer only: the
     process pages' modeler edits the diagram's own names). Unchanged when nothing is translated
     or the XML does not parse here (bpmn-js then says why). */
  function translatedXml(xml, translated) {
    if (!Object.keys(translated).length || typeof window.DOMParser !== "function") {
      return xml;
    }
    var doc = new window.DOMParser().parseFromString(xml, "application/xml");
    if (doc.getElementsByTagName("parsererror").length) {
      return xml;
    }
    var elements = doc.getElementsByTagName("*");
    for (var i = 0; i < elements.length; i += 1) {
      var name = elements[i].getAttribute("name");
      if (name) {
        var key = name.replace(/\s+/g, " ").trim();
        var said = NAMES.say(translated, key);
        if (said !== key) {
          elements[i].setAttribute("name", said);
        }
      }
    }
    return new window.XMLSerializer().serializeToString(doc);
  }

  function draw(section, data) {
    var container = section.querySelector(".diagram-canvas");
    var viewer = new window.BpmnJS({
      container: container,
      additionalModules: [{ translate: ["value", translator(section)] }]
    });
    return viewer.importXML(translatedXml(data.xml, NAMES.read(section))).then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      var completed = mark(canvas, registry, data.completed, MARKERS.completed);
      var current = mark(canvas, registry, data.current, MARKERS.current);
      var failed = mark(canvas, registry, data.failed, MARKERS.failed);
      current.concat(failed).forEach(function (element) {
        markSurroundings(canvas, registry, element);
      });
      fit(canvas, container);
      fitNewLevels(viewer, canvas, container);
      fitOnResize(canvas, container);
      say(section, describe(section, completed, current));
      section.setAttribute("data-state", "ready");
    });
  }

  function start(section) {
    section.hidden = false;
    section.setAttribute("data-state", "loading");
    if (typeof window.BpmnJS !== "function" || typeof window.fetch !== "function") {
      section.classList.add("diagram-failed");
      section.setAttribute("data-state", "failed");
      say(section, section.getAttribute("data-msg-unavailable") || "");
      return;
    }
    say(section, section.getAttribute("data-msg-loading") || "");
    window.fetch(section.getAttribute("data-diagram-url"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("diagram request answered " + response.status);
      }
      return response.json();
    }).then(function (data) {
      return draw(section, data);
    }).catch(function (error) {
      fail(section, error);
    });
  }

  function init() {
    var sections = document.querySelectorAll("section.diagram[data-diagram-url]");
    Array.prototype.forEach.call(sections, start);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
