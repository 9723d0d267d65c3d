// Conditional fields (visible_when / required_when) and a local draft that survives
// a lost connection. Conditions are the same data the server evaluates (forms/conditions.py).
(function () {
  "use strict";
  var form = document.querySelector("form.record-form");
  if (!form) return;

  function values() {
    var data = {};
    form.querySelectorAll(".ff-field").forEach(function (box) {
      var name = box.dataset.field;
      var inputs = box.querySelectorAll("input, select, textarea");
      var list = [], single = null, isList = false;
      inputs.forEach(function (el) {
        if (el.type === "checkbox") { isList = true; if (el.checked) list.push(el.value); }
        else if (el.type === "radio") { if (el.checked) single = el.value; }
        else if (el.tagName === "SELECT" && el.multiple) {
          isList = true; Array.from(el.selectedOptions).forEach(function (o) { list.push(o.value); });
        } else if (el.value !== "") { single = el.value; }
      });
      if (single === "true") single = true; else if (single === "false") single = false;
      data[name] = isList ? list : single;
    });
    return data;
  }

  function holds(cond, data) {
    if (cond.all) return cond.all.every(function (c) { return holds(c, data); });
    if (cond.any) return cond.any.some(function (c) { return holds(c, data); });
    if (cond.not) return !holds(cond.not, data);
    var v = data[cond.field];
    if ("equals" in cond) return v === cond.equals;
    if ("in" in cond) return cond["in"].indexOf(v) >= 0;
    if ("contains" in cond) return Array.isArray(v) && v.indexOf(cond.contains) >= 0;
    if ("filled" in cond) {
      var filled = !(v === null || v === "" || (Array.isArray(v) && v.length === 0));
      return filled === cond.filled;
    }
    return true;
  }

  function refresh() {
    var data = values();
    form.querySelectorAll(".ff-field").forEach(function (box) {
      var vis = box.dataset.visibleWhen ? holds(JSON.parse(box.dataset.visibleWhen), data) : true;
      box.hidden = !vis;
      box.querySelectorAll("input, select, textarea").forEach(function (el) { el.disabled = !vis; });
      var req = box.querySelector(".ff-req");
      if (req && box.dataset.requiredWhen) req.hidden = !(vis && holds(JSON.parse(box.dataset.requiredWhen), data));
    });
  }

  // Keep what was typed in this browser until the server has accepted it.
  var key = form.dataset.draftKey;
  var hasErrors = form.querySelector(".invalid-feedback") !== null;
  function save() {
    try {
      var entries = [];
      new FormData(form).forEach(function (v, k) { if (k !== "csrf_token") entries.push([k, v]); });
      localStorage.setItem(key, JSON.stringify(entries));
    } catch (e) { /* storage full or disabled: the form still works */ }
  }
  function restore() {
    var raw = null;
    try { raw = localStorage.getItem(key); } catch (e) { return; }
    if (!raw || hasErrors) return;
    var entries = JSON.parse(raw);
    var byName = {};
    entries.forEach(function (p) { (byName[p[0]] = byName[p[0]] || []).push(p[1]); });
    Object.keys(byName).forEach(function (name) {
      if (name === "_version") return;
      form.querySelectorAll('[name="' + CSS.escape(name) + '"]').forEach(function (el) {
        if (el.type === "checkbox" || el.type === "radio") el.checked = byName[name].indexOf(el.value) >= 0;
        else el.value = byName[name][0];
      });
    });
  }
  if (key && !form.querySelector('[name="_version"]')) restore();
  form.addEventListener("input", function () { refresh(); save(); });
  form.addEventListener("change", function () { refresh(); save(); });
  form.addEventListener("submit", function () { refresh(); });
  // A page rendered after a successful save carries no form: clear drafts then.
  window.addEventListener("pageshow", refresh);
  refresh();
})();
(function () {
  "use strict";
  if (document.querySelector(".alert-success")) {
    try {
      Object.keys(localStorage).forEach(function (k) { if (k.indexOf("draft:") === 0) localStorage.removeItem(k); });
    } catch (e) { /* ignore */ }
  }
})();
