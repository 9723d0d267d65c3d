// The report builder: drag fields (or press their buttons) onto Rows, Columns, Measures and
// Filters; every change previews live through the server's compiler; Save stores the JSON.
(function () {
  "use strict";
  var palette = JSON.parse(document.getElementById("palette-data").textContent);
  var initial = JSON.parse(document.getElementById("report-body").textContent);
  var T = JSON.parse(document.getElementById("builder-text").textContent);
  var urls = document.getElementById("builder-urls").dataset;
  var token = document.querySelector('meta[name="csrf-token"]').content;
  var source = document.getElementById("source");
  var state = {rows: [], columns: [], measures: [], filters: []};
  var seq = 0;

  Object.keys(palette).forEach(function (k) {
    var o = document.createElement("option");
    o.value = k; o.textContent = palette[k].title;
    source.appendChild(o);
  });

  function field(name) {
    return (palette[source.value].fields.filter(function (f) { return f.name === name; })[0]) ||
      {name: name, label: name, kind: "text"};
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function select(options, value, onchange, label) {
    var s = el("select", "form-select form-select-sm d-inline-block w-auto ms-1");
    if (label) s.setAttribute("aria-label", label);
    options.forEach(function (o) {
      var opt = el("option", "", o[1]); opt.value = o[0];
      if (String(o[0]) === String(value)) opt.selected = true;
      s.appendChild(opt);
    });
    s.addEventListener("change", function () { onchange(s.value); refresh(); });
    return s;
  }

  function add(zone, name) {
    var f = field(name);
    if (zone === "rows" || zone === "columns") {
      var d = {field: name};
      if (f.kind === "date" || f.kind === "datetime") d.grain = "month";
      state[zone] = zone === "columns" ? [d] : state[zone].concat([d]);
    } else if (zone === "measures") {
      seq += 1;
      var m = {key: "m" + seq, type: "count_distinct", field: name};
      var states = palette[source.value].states;
      if (name === "__count") m = {key: "m" + seq, type: "count", title: {"zh-CN": T.count}};
      else if (name === "__conversion") {
        m = {key: "m" + seq, type: "conversion", from: [states[0][0]], to: [states[states.length - 1][0]],
             title: {"zh-CN": T.conversion}};
      } else if (name === "__cycle") {
        m = {key: "m" + seq, type: "avg_days", from: ["created"], to: [states[states.length - 1][0]],
             title: {"zh-CN": T.cycle}};
      }
      else if (f.kind === "number") m.type = "sum";
      else if (f.options) m = {key: "m" + seq, type: "count", where: [{field: name, op: "eq", value: f.options[0][0]}]};
      state.measures.push(m);
    } else {
      state.filters.push({field: name, op: f.options ? "in" : "not_empty", value: f.options ? [] : undefined});
    }
    refresh();
  }

  function renderPalette() {
    var ul = document.getElementById("palette");
    ul.textContent = "";
    var items = [{name: "__count", label: T.count, kind: "count"}];
    if (palette[source.value].states.length) {
      items.push({name: "__conversion", label: T.conversion, kind: "count"});
      items.push({name: "__cycle", label: T.cycle, kind: "count"});
    }
    items = items.concat(palette[source.value].fields);
    items.forEach(function (f) {
      var li = el("li", "mb-1 p-1 border rounded bg-light ff-chip");
      li.draggable = true;
      li.dataset.field = f.name;
      li.appendChild(el("span", "me-1", f.label));
      li.addEventListener("dragstart", function (e) { e.dataTransfer.setData("text/plain", f.name); });
      (f.kind === "count" ? ["measures"] : ["rows", "columns", "measures", "filters"]).forEach(function (z) {
        var b = el("button", "btn btn-sm btn-outline-secondary py-0 px-1 ms-1", T[z].slice(0, 2));
        b.type = "button";
        b.title = T[z];
        b.setAttribute("aria-label", f.label + " → " + T[z]);
        b.addEventListener("click", function () { add(z, f.name); });
        li.appendChild(b);
      });
      ul.appendChild(li);
    });
  }

  document.querySelectorAll(".dropzone").forEach(function (zone) {
    zone.addEventListener("dragover", function (e) { e.preventDefault(); zone.classList.add("bg-light"); });
    zone.addEventListener("dragleave", function () { zone.classList.remove("bg-light"); });
    zone.addEventListener("drop", function (e) {
      e.preventDefault(); zone.classList.remove("bg-light");
      add(zone.dataset.zone, e.dataTransfer.getData("text/plain"));
    });
  });

  function removeButton(list, i) {
    var b = el("button", "btn btn-sm btn-link text-danger p-0 ms-2", "×");
    b.type = "button"; b.setAttribute("aria-label", T.remove);
    b.addEventListener("click", function () { list.splice(i, 1); refresh(); });
    return b;
  }

  function renderZones() {
    ["rows", "columns"].forEach(function (z) {
      var ul = document.querySelector("#zone-" + z + " .items");
      ul.textContent = "";
      state[z].forEach(function (d, i) {
        var f = field(d.field);
        var li = el("li", "mb-1", f.label);
        if (d.grain) {
          li.appendChild(select([["day", "日"], ["week", "周"], ["month", "月"], ["quarter", "季度"], ["year", "年"]],
                                d.grain, function (v) { d.grain = v; }));
        }
        li.appendChild(removeButton(state[z], i));
        ul.appendChild(li);
      });
    });
    var mu = document.querySelector("#zone-measures .items");
    mu.textContent = "";
    state.measures.forEach(function (m, i) {
      var li = el("li", "mb-1");
      if (m.type === "count" && !m.where) li.appendChild(el("span", "", T.count));
      else if (m.type === "count" && m.where) {
        var f = field(m.where[0].field);
        li.appendChild(el("span", "", f.label + " ="));
        li.appendChild(select(f.options || [], m.where[0].value, function (v) { m.where[0].value = v; }));
        var share = el("label", "small ms-2");
        var cb = el("input", "form-check-input me-1"); cb.type = "checkbox"; cb.checked = !!m.asShare;
        cb.addEventListener("change", function () { m.asShare = cb.checked; refresh(); });
        share.appendChild(cb); share.appendChild(document.createTextNode(T.share));
        li.appendChild(share);
      } else if (m.type === "conversion" || m.type === "avg_days") {
        var states = palette[source.value].states;
        li.appendChild(el("span", "", m.type === "conversion" ? T.conversion : T.cycle));
        if (m.type === "conversion") {
          li.appendChild(select(states, m.from[0], function (v) { m.from = [v]; }, "from"));
        }
        li.appendChild(el("span", "", " →"));
        li.appendChild(select(states, m.to[0], function (v) { m.to = [v]; }, "to"));
      } else if (["count_distinct", "sum", "avg", "min", "max"].indexOf(m.type) < 0) {
        // shares, ratios, reached, within: kept as defined (edited in the JSON), shown by name
        li.appendChild(el("span", "", (m.title && (m.title["zh-CN"] || m.title.en)) || m.key));
      } else {
        li.appendChild(el("span", "", field(m.field).label));
        li.appendChild(select([["count_distinct", "去重计数"], ["sum", "合计"], ["avg", "平均"], ["min", "最小"], ["max", "最大"]],
                              m.type, function (v) { m.type = v; }));
      }
      li.appendChild(removeButton(state.measures, i));
      mu.appendChild(li);
    });
    var fu = document.querySelector("#zone-filters .items");
    fu.textContent = "";
    state.filters.forEach(function (flt, i) {
      var f = field(flt.field);
      var li = el("li", "mb-1", f.label);
      if (f.options) {
        var s = el("select", "form-select form-select-sm d-inline-block w-auto ms-1");
        s.multiple = true; s.setAttribute("aria-label", f.label);
        f.options.forEach(function (o) {
          var opt = el("option", "", o[1]); opt.value = o[0];
          opt.selected = (flt.value || []).indexOf(o[0]) >= 0; s.appendChild(opt);
        });
        s.addEventListener("change", function () {
          flt.value = Array.from(s.selectedOptions).map(function (o) { return o.value; });
          flt.op = flt.value.length ? "in" : "not_empty"; refresh();
        });
        li.appendChild(s);
      } else if (f.kind === "date" || f.kind === "datetime") {
        li.appendChild(select([["this_month", "本月"], ["last_month", "上月"], ["last_30_days", "近30天"],
                               ["last_90_days", "近90天"], ["this_year", "今年"]], flt.value || "last_30_days",
                              function (v) { flt.op = "relative"; flt.value = v; }));
        if (flt.op !== "relative") { flt.op = "relative"; flt.value = "last_30_days"; }
      }
      li.appendChild(removeButton(state.filters, i));
      fu.appendChild(li);
    });
  }

  function definition() {
    var measures = [];
    state.measures.forEach(function (m) {
      var copy = JSON.parse(JSON.stringify(m));
      delete copy.asShare;
      measures.push(copy);
      if (m.asShare) {
        var base = state.measures.filter(function (x) { return x.type === "count" && !x.where; })[0];
        if (!base) { base = {key: "all_records", type: "count", title: {"zh-CN": T.count}}; measures.unshift(base); }
        measures.push({key: m.key + "_share", type: "ratio", numerator: m.key, denominator: base.key,
                       format: "percent"});
      }
    });
    var body = {key: document.getElementById("rkey").value || "draft", source: source.value,
                dimensions: state.rows.concat(state.columns), measures: measures,
                filters: state.filters.filter(function (f) { return f.op !== "in" || (f.value && f.value.length); })
                  .map(function (f) { var c = {field: f.field, op: f.op}; if (f.value !== undefined) c.value = f.value; return c; }),
                chart: {type: document.getElementById("charttype").value}};
    var title = document.getElementById("rtitle").value;
    if (initial && initial.title) body.title = JSON.parse(JSON.stringify(initial.title));  // keep other languages
    if (title) body.title = Object.assign(body.title || {}, {"zh-CN": title});
    // what this page does not edit (description, sort, limit, TOP per group, chart axes) is kept as it was
    if (initial && initial.source === body.source) {
      ["description", "sort", "limit", "top"].forEach(function (k) { if (initial[k] !== undefined) body[k] = initial[k]; });
      if (initial.chart) body.chart = Object.assign({}, initial.chart, body.chart);
    }
    return body;
  }

  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin", body: JSON.stringify(body),
                       headers: {"Content-Type": "application/json", "X-CSRFToken": token}})
      .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, body: j}; }); });
  }

  function showErrors(errors) {
    var box = document.getElementById("builder-errors");
    box.hidden = !errors;
    box.textContent = errors ? Object.keys(errors).map(function (k) { return k + " " + errors[k].join("；"); }).join("\n") : "";
  }

  var timer = null;
  function refresh() {
    renderZones();
    clearTimeout(timer);
    timer = setTimeout(function () {
      var body = definition();
      if (!body.measures.length) return;
      post(urls.preview, body).then(function (res) {
        if (!res.ok) { showErrors(res.body.errors); return; }
        showErrors(null);
        FormflowChart.draw(document.getElementById("preview-chart"), res.body, body.chart, null);
        var table = document.getElementById("preview-table");
        table.textContent = "";
        res.body.table.forEach(function (row, i) {
          var tr = el("tr");
          row.forEach(function (cell) { tr.appendChild(el(i === 0 ? "th" : "td", "", cell)); });
          table.appendChild(tr);
        });
      });
    }, 200);
  }

  document.getElementById("save").addEventListener("click", function () {
    post(urls.save, definition()).then(function (res) {
      if (!res.ok) { showErrors(res.body.errors); return; }
      window.location.href = res.body.url;
    });
  });
  source.addEventListener("change", function () {
    state = {rows: [], columns: [], measures: [], filters: []};
    renderPalette(); refresh();
  });
  document.getElementById("charttype").addEventListener("change", refresh);

  // editing a saved report
  if (initial && initial.source) {
    source.value = initial.source;
    document.getElementById("rkey").value = initial.key;
    document.getElementById("rkey").readOnly = true;
    document.getElementById("rtitle").value = (initial.title || {})["zh-CN"] || "";
    document.getElementById("charttype").value = (initial.chart || {}).type || "bar";
    var dims = initial.dimensions || [];
    state.rows = dims.slice(0, 1).concat(dims.length > 2 ? dims.slice(1, -1) : []);
    state.columns = dims.length > 1 ? dims.slice(-1) : [];
    var ratios = (initial.measures || []).filter(function (m) { return m.type === "ratio"; });
    state.measures = (initial.measures || []).filter(function (m) { return m.type !== "ratio"; });
    ratios.forEach(function (r) {
      state.measures.forEach(function (m) { if (m.key === r.numerator) m.asShare = true; });
    });
    state.filters = initial.filters || [];
    seq = state.measures.length + 10;
  }
  renderPalette();
  refresh();
})();
