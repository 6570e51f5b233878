/*
 * The diagram of a process page: bpmn-js's Modeler for process owners (the page loads the modeler
 * bundle and gives a save URL), else its Viewer. Both bundles define window.BpmnJS.
 *
 * The page renders <section id="process-diagram" hidden data-xml-url data-save-url data-csrf-*
 * data-msg-*>; this script shows it, draws the XML of the chosen version and, in the editor, sends
 * the XML (saveXML) with the session's CSRF token as a form POST to the save URL (same origin).
 * The answer is {ok, versions, latest, url} or {error, message, details{file, element_id, line}};
 * an error naming an element marks it (pd-invalid) and puts the message next to it.
 * Each save carries data-base-version, the latest version when the page was drawn. When someone
 * deployed a newer one meanwhile, the server answers 409 (details: base_version, latest_version,
 * deployed_by, deployed_at): the page says so, keeps the diagram in the editor and offers its
 * download (#modeler-download) and a reload (#modeler-reload). After a save that made a version,
 * the heading, the status line and the versions table are read again from the new version's page
 * (the address becomes that page's), and the next save is based on the new version.
 * window.processdeskModeler is the drawn Modeler/Viewer, for tests and the browser's console.
 *
 * The compare page (<section id="process-compare"> with two <figure data-xml-url>) draws two
 * versions with the Viewer and marks, by BPMN id, the elements only in the newer one (pd-added),
 * only in the older one (pd-removed) and those whose content differs (pd-changed: name, type,
 * connections, properties, extension elements; moving a shape is not a change). The summary
 * under the legend names them in words.
 */
(function () {
  "use strict";

  var INVALID = "pd-invalid";

  // A version's BPMN file, as text; rejects on any answer but 2xx.
  function fetchXml(url) {
    return window.fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/xml" }
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("diagram request answered " + response.status);
      }
      return response.text();
    });
  }

  function msg(section, name, values) {
    var text = section.getAttribute("data-msg-" + name) || "";
    Object.keys(values || {}).forEach(function (key) {
      text = text.split("{" + key + "}").join(String(values[key]));
    });
    return text;
  }

  function say(section, text) {
    var status = section.querySelector(".diagram-status");
    if (status) {
      status.textContent = text;
    }
  }

  function tell(text, kind) {
    var box = document.getElementById("modeler-message");
    if (box) {
      box.textContent = text;
      box.className = "modeler-message" + (kind ? " modeler-" + kind : "");
    }
  }

  function fit(canvas, container) {
    if (!container.isConnected || container.clientWidth < 1 || container.clientHeight < 1) {
      return;
    }
    canvas.resized();
    var box = canvas.viewbox();
    if (box.inner.width > 0 && box.inner.height > 0) {
      canvas.zoom("fit-viewport", "auto");
    }
  }

  function clearMarks(modeler, state) {
    var canvas = modeler.get("canvas");
    state.marked.forEach(function (element) {
      canvas.removeMarker(element, INVALID);
    });
    state.marked = [];
    if (state.overlay) {
      modeler.get("overlays").remove(state.overlay);
      state.overlay = null;
    }
  }

  function markInvalid(modeler, state, details, message) {
    var id = details && details.element_id;
    var element = id ? modeler.get("elementRegistry").get(id) : null;
    if (!element) {
      return;
    }
    var canvas = modeler.get("canvas");
    // An element inside a collapsed subprocess is drawn on that subprocess's own plane: show that
    // plane, and the element on it, or the mark is made where nobody looks.
    if (typeof canvas.findRoot === "function") {
      var root = canvas.findRoot(element);
      if (root && root !== canvas.getRootElement()) {
        canvas.setRootElement(root);
      }
    }
    if (typeof canvas.scrollToElement === "function") {
      try {
        canvas.scrollToElement(element);
      } catch (ignored) {
        /* a connection without a box to scroll to: the plane is shown, that will do */
      }
    }
    canvas.addMarker(element, INVALID);
    state.marked.push(element);
    var note = document.createElement("div");
    note.className = "pd-invalid-note";
    note.setAttribute("role", "note");
    note.textContent = message;
    state.overlay = modeler.get("overlays").add(element, { position: { bottom: -8, left: 0 }, html: note });
  }

  function describeError(section, body) {
    var details = (body && body.details) || {};
    var parts = [body && body.message ? body.message : ""];
    if (details.element_id) {
      parts.push(details.element_id);
    }
    if (details.line) {
      parts.push(msg(section, "line", { line: details.line }));
    }
    return parts.filter(Boolean).join(" · ");
  }

  /* After a save made version `version`: the page's heading, status, versions table and address
   * become those of that version; the diagram in the editor already is it. */
  function showSaved(section, version, url) {
    var title = document.getElementById("diagram-title");
    if (title) {
      title.textContent = msg(section, "heading", { version: version });
    }
    say(section, msg(section, "ready", { version: version }));
    if (!url) {
      return;
    }
    if (window.history && typeof window.history.replaceState === "function") {
      window.history.replaceState(null, "", url);
    }
    window.fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(function (response) {
      if (!response.ok) {
        throw new Error("page request answered " + response.status);
      }
      return response.text();
    }).then(function (html) {
      var fresh = new window.DOMParser().parseFromString(html, "text/html");
      var selector = 'section[aria-labelledby="versions-title"]';
      var table = document.querySelector(selector);
      var freshTable = fresh.querySelector(selector);
      if (table && freshTable) {
        table.innerHTML = freshTable.innerHTML;
      }
      var heading = document.querySelector("main h1");
      var freshHeading = fresh.querySelector("main h1");
      if (heading && freshHeading) {
        heading.textContent = freshHeading.textContent;
      }
      var freshSection = fresh.getElementById("process-diagram");
      if (freshSection && freshSection.getAttribute("data-xml-url")) {
        section.setAttribute("data-xml-url", freshSection.getAttribute("data-xml-url"));
      }
      section.setAttribute("data-page-state", "fresh");
    }).catch(function (error) {
      if (window.console && error) {
        window.console.warn("page:", error);
      }
    });
  }

  /* 409: a newer version was deployed since the page was drawn. The diagram stays in the editor;
   * the owner may download it and reload. */
  function showConflict(section, modeler, details) {
    var when = details.deployed_at ? String(details.deployed_at).slice(0, 16).replace("T", " ") : "";
    tell(msg(section, "conflict", {
      who: details.deployed_by || msg(section, "someone"),
      latest: details.latest_version,
      base: details.base_version,
      when: when
    }), "error");
    offerDownload(modeler, null);
  }

  /* The conflict box's "Download your diagram" (the editor's diagram as a file), said with ``text``. */
  function offerDownload(modeler, text) {
    if (text) {
      tell(text, "error");
    }
    var box = document.getElementById("modeler-conflict");
    var download = document.getElementById("modeler-download");
    if (!box) {
      return;
    }
    modeler.saveXML({ format: true }).then(function (result) {
      if (download) {
        if (download.href && download.href.indexOf("blob:") === 0) {
          window.URL.revokeObjectURL(download.href);
        }
        download.href = window.URL.createObjectURL(new window.Blob([result.xml], { type: "application/xml" }));
      }
      box.hidden = false;
    });
  }

  function save(section, modeler, state, button) {
    clearMarks(modeler, state);
    button.disabled = true;
    tell(msg(section, "saving"), "");
    var conflict = document.getElementById("modeler-conflict");
    if (conflict) {
      conflict.hidden = true;
    }
    modeler.saveXML({ format: true }).then(function (result) {
      var form = new window.FormData();
      form.append(section.getAttribute("data-csrf-field") || "csrf_token", section.getAttribute("data-csrf-token") || "");
      form.append("xml", result.xml);
      form.append("base_version", section.getAttribute("data-base-version") || "");
      return window.fetch(section.getAttribute("data-save-url"), {
        method: "POST",
        body: form,
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      });
    }).then(function (response) {
      return response.json().then(function (body) {
        return { status: response.status, body: body };
      }, function () {
        return { status: response.status, body: null };
      });
    }).then(function (answer) {
      button.disabled = false;
      if (answer.body && answer.body.ok) {
        section.setAttribute("data-saved-version", String(answer.body.latest));
        section.setAttribute("data-base-version", String(answer.body.latest));
        /* changed false: the diagram is the latest version's; no version was made */
        tell(msg(section, answer.body.changed === false ? "unchanged" : "saved", { version: answer.body.latest }), "ok");
        if (answer.body.changed !== false) {
          showSaved(section, answer.body.latest, answer.body.url);
        }
        return;
      }
      if (answer.status === 409 && answer.body && answer.body.details && answer.body.details.latest_version) {
        showConflict(section, modeler, answer.body.details);
        return;
      }
      if (answer.status === 401) {
        /* the session ended while the diagram was drawn: saving again cannot work from this page */
        offerDownload(modeler, msg(section, "signedout"));
        return;
      }
      if (!answer.body) {
        tell(msg(section, "failed"), "error");
        return;
      }
      var text = describeError(section, answer.body);
      tell(msg(section, "invalid", { message: text }), "error");
      markInvalid(modeler, state, answer.body.details, text);
    }).catch(function () {
      button.disabled = false;
      tell(msg(section, "failed"), "error");
    });
  }

  /* A reference bpmn-js cannot resolve to an element of the diagram is dropped when it writes the
   * XML. SpiffWorkflow names task data there: a multi-instance task's loopDataInputRef is the
   * variable holding its collection (cab_members), not an element id. Put a stand-in with that id
   * back on each such property, so saving writes the reference as it was read. */
  function keepUnresolved(modeler, warnings) {
    var moddle = modeler.get("moddle");
    (warnings || []).forEach(function (warning) {
      var element = warning.element;
      if (!element || !element.$descriptor || typeof warning.value !== "string" || !warning.property) {
        return;
      }
      var property = element.$descriptor.propertiesByName[warning.property];
      if (!property || !property.isReference) {
        return;
      }
      var standIn;
      try {
        standIn = moddle.create(property.type, { id: warning.value });
      } catch (error) {
        standIn = moddle.create("bpmn:DataInput", { id: warning.value });
      }
      if (property.isMany) {
        element.get(property.name).push(standIn);
      } else {
        element.set(property.name, standIn);
      }
    });
  }

  /* The tasks waiting now at each user task (data-waiting: {"<bpmn id>": count}, the page's "Where
     the work waits"), as a badge on the task's shape. Only drawn: saving ignores overlays. */
  function showWaiting(section, modeler) {
    var waiting;
    try {
      waiting = JSON.parse(section.getAttribute("data-waiting") || "{}");
    } catch (error) {
      return;
    }
    var registry = modeler.get("elementRegistry");
    var overlays = modeler.get("overlays");
    Object.keys(waiting).forEach(function (id) {
      var element = registry.get(id);
      if (!element || !waiting[id]) { return; }
      var badge = document.createElement("span");
      badge.className = "waiting-badge";
      badge.textContent = String(waiting[id]);
      badge.title = msg(section, "waiting", { count: waiting[id] });
      overlays.add(element, "waiting", { position: { top: -10, right: 10 }, html: badge });
    });
  }

  function start(section) {
    section.hidden = false;
    var container = section.querySelector(".diagram-canvas");
    if (typeof window.BpmnJS !== "function" || typeof window.fetch !== "function") {
      section.setAttribute("data-state", "failed");
      say(section, msg(section, "unavailable"));
      return;
    }
    section.setAttribute("data-state", "loading");
    say(section, msg(section, "loading"));
    var modeler = new window.BpmnJS({ container: container });
    window.processdeskModeler = modeler;
    fetchXml(section.getAttribute("data-xml-url")).then(function (xml) {
      return modeler.importXML(xml);
    }).then(function (result) {
      keepUnresolved(modeler, result && result.warnings);
      var canvas = modeler.get("canvas");
      fit(canvas, container);
      if (typeof window.ResizeObserver === "function") {
        new window.ResizeObserver(function () {
          window.requestAnimationFrame(function () { fit(canvas, container); });
        }).observe(container);
      }
      showWaiting(section, modeler);
      say(section, msg(section, "ready", { version: (section.getAttribute("data-xml-url").match(/version=(\d+)/) || [])[1] || "" }));
      section.setAttribute("data-state", "ready");
      var button = document.getElementById("modeler-save");
      if (button && section.getAttribute("data-save-url")) {
        var state = { marked: [], overlay: null };
        button.addEventListener("click", function () {
          save(section, modeler, state, button);
        });
      }
    }).catch(function (error) {
      section.setAttribute("data-state", "failed");
      say(section, msg(section, "error"));
      if (window.console && error) {
        window.console.warn("diagram:", error);
      }
    });
  }


  /* ---- comparing two versions ---- */

  var SKIP = { $parent: true, $model: true, $descriptor: true, di: true, $instanceOf: true };

  /* The content of a BPMN element as a string: its own properties, references by id. */
  function signature(bo) {
    var seen = [];
    function walk(value, depth) {
      if (typeof value === "string") {
        return value.replace(/\s+/g, " ").trim();  /* re-indenting the XML changes no content */
      }
      if (value === null || value === undefined || typeof value !== "object") {
        return value;
      }
      if (depth > 0 && typeof value.id === "string" && value.$type) {
        return "#" + value.id;
      }
      if (seen.indexOf(value) !== -1 || depth > 8) {
        return "…";
      }
      seen.push(value);
      if (Array.isArray(value)) {
        return value.map(function (item) { return walk(item, depth + 1); });
      }
      var out = {};
      Object.keys(value).sort().forEach(function (key) {
        if (!SKIP[key] && typeof value[key] !== "function") {
          out[key] = walk(value[key], depth + 1);
        }
      });
      if (value.$type) {
        out.$type = value.$type;
      }
      return out;
    }
    return JSON.stringify(walk(bo, 0));
  }

  function contentElements(viewer) {
    var found = {};
    viewer.get("elementRegistry").forEach(function (element) {
      var bo = element.businessObject;
      if (!bo || element.type === "label" || !bo.id || element.id !== bo.id) {
        return;
      }
      if (bo.$type === "bpmn:Process" || bo.$type === "bpmn:Collaboration" || bo.$type === "bpmn:SubProcess" && element === viewer.get("canvas").getRootElement()) {
        return;
      }
      found[bo.id] = { element: element, signature: signature(bo), name: nameOf(bo) };
    });
    return found;
  }

  function nameOf(bo) {
    return bo.name ? String(bo.name).replace(/\s+/g, " ").trim() : bo.id;
  }

  function markAll(viewer, items, marker) {
    var canvas = viewer.get("canvas");
    items.forEach(function (item) { canvas.addMarker(item.element, marker); });
  }

  /* The page's translations of the diagram's names: static/js/diagram-names.js. */
  function listNames(items, translated) {
    var names = [];
    items.forEach(function (item) {
      var name = window.processdeskNames.say(translated, item.name);
      if (names.indexOf(name) === -1) {
        names.push(name);
      }
    });
    return names.join(", ");
  }

  function compareViewers(section, older, newer) {
    var a = contentElements(older);
    var b = contentElements(newer);
    var changed = [];
    var changedOld = [];
    var added = [];
    var removed = [];
    Object.keys(b).forEach(function (id) {
      if (!a[id]) {
        added.push(b[id]);
      } else if (a[id].signature !== b[id].signature) {
        changed.push(b[id]);
        changedOld.push(a[id]);
      }
    });
    Object.keys(a).forEach(function (id) {
      if (!b[id]) {
        removed.push(a[id]);
      }
    });
    markAll(newer, changed, "pd-changed");
    markAll(older, changedOld, "pd-changed");
    markAll(newer, added, "pd-added");
    markAll(older, removed, "pd-removed");
    var parts = [];
    var translated = window.processdeskNames.read(section);
    if (changed.length) { parts.push(msg(section, "changed", { names: listNames(changed, translated) })); }
    if (added.length) { parts.push(msg(section, "added", { names: listNames(added, translated) })); }
    if (removed.length) { parts.push(msg(section, "removed", { names: listNames(removed, translated) })); }
    var summary = section.querySelector(".compare-summary");
    summary.textContent = parts.length ? parts.join(" ") : msg(section, "same");
    section.setAttribute("data-changed", changed.map(function (i) { return i.element.id; }).join(" "));
  }

  function drawSide(figure) {
    var container = figure.querySelector(".diagram-canvas");
    var viewer = new window.BpmnJS({ container: container });
    return fetchXml(figure.getAttribute("data-xml-url")).then(function (xml) {
      return viewer.importXML(xml);
    }).then(function () {
      fit(viewer.get("canvas"), container);
      return viewer;
    });
  }

  function startCompare(section) {
    section.hidden = false;
    var summary = section.querySelector(".compare-summary");
    if (typeof window.BpmnJS !== "function" || typeof window.fetch !== "function") {
      section.setAttribute("data-state", "failed");
      summary.textContent = msg(section, "unavailable");
      return;
    }
    section.setAttribute("data-state", "loading");
    summary.textContent = msg(section, "loading");
    var figures = section.querySelectorAll("figure[data-xml-url]");
    Promise.all(Array.prototype.map.call(figures, drawSide)).then(function (viewers) {
      compareViewers(section, viewers[0], viewers[1]);
      section.setAttribute("data-state", "ready");
    }).catch(function (error) {
      section.setAttribute("data-state", "failed");
      summary.textContent = msg(section, "error");
      if (window.console && error) {
        window.console.warn("compare:", error);
      }
    });
  }

  function init() {
    var section = document.getElementById("process-diagram");
    if (section && section.getAttribute("data-xml-url")) {
      start(section);
    }
    var compare = document.getElementById("process-compare");
    if (compare) {
      startCompare(compare);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
