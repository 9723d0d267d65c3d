// The rule editor: live condition checks, a field palette with completion, action templates,
// the trigger picker and dry runs. Every request carries the page's CSRF token.
(function () {
  "use strict";
  var form = document.getElementById("rule-form");
  if (!form) return;
  var token = document.querySelector('meta[name="csrf-token"]').content;
  var fields = JSON.parse(document.getElementById("form-fields").textContent);
  var formSelect = document.getElementById("form");
  var condition = document.getElementById("condition");
  var verdict = document.getElementById("condition-check");
  var palette = document.getElementById("field-palette");
  var datalist = document.getElementById("field-names");
  var actions = document.getElementById("actions");
  var trigger = document.getElementById("trigger");
  var triggerType = document.getElementById("trigger-type");

  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify(body)}).then(function (r) { return r.json(); });
  }

  function showFields() {
    var list = fields[formSelect.value] || [];
    palette.textContent = "";
    datalist.textContent = "";
    list.forEach(function (f) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "btn btn-sm btn-light border me-1 mb-1";
      b.textContent = f[1] + " · " + f[0];
      b.addEventListener("click", function () {
        var at = condition.selectionStart || condition.value.length;
        condition.value = condition.value.slice(0, at) + f[0] + condition.value.slice(at);
        condition.focus();
        check();
      });
      palette.appendChild(b);
      var o = document.createElement("option");
      o.value = f[0];
      o.label = f[1];
      datalist.appendChild(o);
    });
  }

  var timer = null;
  function check() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (!condition.value.trim()) { verdict.textContent = ""; condition.classList.remove("is-invalid", "is-valid"); return; }
      post(form.dataset.checkUrl, {form: formSelect.value, expression: condition.value}).then(function (res) {
        condition.classList.toggle("is-invalid", !res.ok);
        condition.classList.toggle("is-valid", res.ok);
        verdict.className = res.ok ? "form-text text-success" : "form-text text-danger";
        verdict.textContent = res.ok ? "✓" : res.errors.map(function (e) {
          return (e.col ? "[" + e.col + "] " : "") + e.message;
        }).join("；");
      });
    }, 250);
  }

  var triggerDefaults = {
    created: {type: "created"}, updated: {type: "updated", fields: []},
    saved: {type: "saved", fields: []},
    status: {type: "status", field: "status", from: [], to: []},
    time: {type: "time", from: "created_at", offset: {hours: 2}},
    cron: {type: "cron", schedule: "0 9 * * *"}, manual: {type: "manual", label: {"zh-CN": "执行"}},
    scheduled: {type: "scheduled"}
  };
  triggerType.addEventListener("change", function () {
    trigger.value = JSON.stringify(triggerDefaults[triggerType.value]);
  });

  document.querySelectorAll("#action-buttons [data-template]").forEach(function (b) {
    b.addEventListener("click", function () {
      var list;
      try { list = JSON.parse(actions.value || "[]"); } catch (e) { alert(e.message); return; }
      list.push(JSON.parse(b.dataset.template));
      actions.value = JSON.stringify(list, null, 2);
    });
  });

  formSelect.addEventListener("change", function () { showFields(); check(); });
  condition.addEventListener("input", check);
  showFields();
  check();

  var sim = document.getElementById("simulate");
  if (sim) {
    document.getElementById("sim-go").addEventListener("click", function () {
      var out = document.getElementById("sim-result");
      post(sim.dataset.url, {from: document.getElementById("sim-from").value,
                             to: document.getElementById("sim-to").value}).then(function (res) {
        if (!res.status_url) { out.textContent = JSON.stringify(res, null, 2); return; }
        follow(res.status_url, out, sim.dataset.running);
      });
    });
  }

  // A queued job (a simulation): show its progress until it ends, then its result.
  function follow(url, out, running, done) {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (job) {
      if (job.status === "pending" || job.status === "running") {
        out.textContent = running.replace("{done}", job.done).replace("{total}", job.total === null ? "…" : job.total);
        setTimeout(function () { follow(url, out, running, done); }, 1000);
      } else if (done && !job.error) {
        done(job);
      } else {
        out.textContent = JSON.stringify(job.error ? {error: job.error} : job.result, null, 2);
      }
    });
  }

  var catchUp = document.getElementById("catch-up");
  if (catchUp) {
    var catchOut = document.getElementById("catch-result");
    var confirmBtn = document.getElementById("catch-confirm");
    function runCatchUp(preview) {
      post(catchUp.dataset.url, {since: document.getElementById("catch-since").value, preview: preview})
        .then(function (res) {
          if (!res.status_url) { catchOut.textContent = res.error; return; }
          follow(res.status_url, catchOut, catchUp.dataset.running, function (job) {
            var n = job.result.count || 0;
            catchOut.textContent = (preview ? catchUp.dataset.preview : catchUp.dataset.armed).replace("{n}", n);
            if (preview) {
              var list = document.createElement("ul");
              (job.result.sample || []).forEach(function (s) {
                var li = document.createElement("li");
                var link = document.createElement("a");
                link.href = catchUp.dataset.recordUrl + s.record;
                link.textContent = catchUp.dataset.record + " #" + s.record;
                li.appendChild(link);
                // the business time zone, as every other time on the page
                li.appendChild(document.createTextNode(" · " + new Date(s.due).toLocaleString(catchUp.dataset.lang,
                  {timeZone: catchUp.dataset.zone, dateStyle: "short", timeStyle: "short"})));
                list.appendChild(li);
              });
              catchOut.appendChild(list);
              confirmBtn.classList.toggle("d-none", n === 0);
            } else {
              confirmBtn.classList.add("d-none");
            }
          });
        });
    }
    document.getElementById("catch-preview").addEventListener("click", function () { runCatchUp(true); });
    confirmBtn.addEventListener("click", function () { runCatchUp(false); });
  }

  var dry = document.getElementById("dry-run");
  if (dry) {
    document.getElementById("dry-go").addEventListener("click", function () {
      var out = document.getElementById("dry-result");
      post(dry.dataset.url, {record: document.getElementById("dry-record").value}).then(function (res) {
        out.textContent = JSON.stringify(res, null, 2);
      });
    });
  }
})();
