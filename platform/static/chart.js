// Draws a report result with plotly (served from the installed package) and drills down on
// click. data = {columns: [...], rows: [[...]]}; chart = {type, x, series, y}.
window.FormflowChart = (function () {
  "use strict";

  function label(col, value) {
    if (value === null || value === undefined) return "（空）";
    return (col.labels && col.labels[value] !== undefined) ? col.labels[value] : String(value);
  }

  function draw(el, data, chart, drill) {
    chart = chart || {};
    var type = chart.type || "bar";
    var cols = data.columns;
    var dims = cols.map(function (c, i) { return [c, i]; }).filter(function (p) { return p[0].kind === "dimension"; });
    var meas = cols.map(function (c, i) { return [c, i]; }).filter(function (p) { return p[0].kind === "measure"; });
    if (chart.y && chart.y.length) {
      meas = meas.filter(function (p) { return chart.y.indexOf(p[0].key) >= 0; });
    }
    var allPercent = meas.length > 0 && meas.every(function (m) { return m[0].format === "percent"; });
    el.textContent = "";
    if (type === "table" || !meas.length) { el.hidden = true; return; }
    el.hidden = false;
    if (type === "kpi") {
      var m = meas[0];
      var v = data.rows.length ? data.rows[0][m[1]] : null;
      el.innerHTML = "";
      var big = document.createElement("div");
      big.className = "display-4 text-center py-4";
      big.textContent = v === null ? "—" : (m[0].format === "percent" ? (v * 100).toFixed(2) + "%" : v.toLocaleString());
      el.appendChild(big);
      return;
    }
    var traces = [];
    var x = dims[0], series = dims[1];
    if (type === "funnel") {
      if (!x) {
        traces.push({type: "funnel", y: meas.map(function (p) { return p[0].label || p[0].key; }),
                     x: meas.map(function (p) { return data.rows.length ? data.rows[0][p[1]] : 0; }),
                     textinfo: "value+percent initial"});
      } else {
        traces.push({type: "funnel", y: data.rows.map(function (r) { return label(x[0], r[x[1]]); }),
                     x: data.rows.map(function (r) { return r[meas[0][1]]; }), textinfo: "value+percent initial",
                     customdata: data.rows.map(function (r) { return [r[x[1]]]; }), meta: meas[0][0].key});
      }
    } else if (type === "pie" && x) {
      traces.push({type: "pie", labels: data.rows.map(function (r) { return label(x[0], r[x[1]]); }),
                   values: data.rows.map(function (r) { return r[meas[0][1]]; }), meta: meas[0][0].key,
                   customdata: data.rows.map(function (r) { return [r[x[1]]]; })});
    } else if (series && x) {
      var groups = {};
      data.rows.forEach(function (r) {
        var k = r[series[1]];
        (groups[k] = groups[k] || []).push(r);
      });
      Object.keys(groups).forEach(function (k) {
        var rows = groups[k];
        traces.push({type: type === "line" ? "scatter" : "bar", name: label(series[0], rows[0][series[1]]),
                     x: rows.map(function (r) { return label(x[0], r[x[1]]); }),
                     y: rows.map(function (r) { return r[meas[0][1]]; }), meta: meas[0][0].key,
                     customdata: rows.map(function (r) { return [r[x[1]], r[series[1]]]; })});
      });
    } else {
      meas.forEach(function (m, i) {
        traces.push({type: type === "line" ? "scatter" : "bar", name: m[0].label || m[0].key, offsetgroup: String(i),
                     meta: m[0].key,
                     yaxis: m[0].format === "percent" && meas.length > 1 && !allPercent ? "y2" : "y",
                     x: x ? data.rows.map(function (r) { return label(x[0], r[x[1]]); }) : [m[0].key],
                     y: data.rows.map(function (r) { return r[m[1]]; }),
                     customdata: x ? data.rows.map(function (r) { return [r[x[1]]]; }) : [[]]});
      });
    }
    var layout = {margin: {t: 20, r: 50, b: 60, l: 50}, barmode: type === "stacked_bar" ? "stack" : "group",
                  yaxis: allPercent ? {tickformat: ".0%", rangemode: "tozero"} : {},
                  yaxis2: {overlaying: "y", side: "right", tickformat: ".0%", rangemode: "tozero", showgrid: false},
                  legend: {orientation: "h"}, font: {family: "Noto Sans CJK SC, sans-serif"}};
    Plotly.newPlot(el, traces, layout, {displayModeBar: false, responsive: true});
    if (drill && x) {
      el.on("plotly_click", function (ev) {
        var p = ev.points[0];
        var raw = p.customdata || [];
        var params = new URLSearchParams(window.location.search);
        params.set(x[0].key, raw[0] === null || raw[0] === undefined ? "" : raw[0]);
        if (series && raw.length > 1) params.set(series[0].key, raw[1] === null ? "" : raw[1]);
        // the records behind this bar's number: its measure's own condition too
        if (p.data && typeof p.data.meta === "string") params.set("measure", p.data.meta);
        window.location.href = drill + "?" + params.toString();
      });
    }
  }
  return {draw: draw, label: label};
})();
