// Dashboard tiles: each draws its report with the page's date range; managers rearrange tiles
// by dragging them (or with the ← → buttons) and the order is saved.
(function () {
  "use strict";
  var grid = document.getElementById("tiles");
  if (!grid) return;
  var token = document.querySelector('meta[name="csrf-token"]').content;
  var range = window.location.search;

  grid.querySelectorAll(".tile").forEach(function (tile) {
    var chart = tile.querySelector(".tile-chart");
    if (!chart) return;  // task and record tiles are drawn by the server
    fetch(chart.dataset.url + range, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (data) {
        tile.querySelector(".tile-title").textContent = data.title || tile.dataset.report;
        FormflowChart.draw(chart, data, data.chart, data.drill);
        var table = tile.querySelector(".tile-table");
        (data.table || []).forEach(function (row, i) {
          var tr = document.createElement("tr");
          row.forEach(function (cell) {
            var td = document.createElement(i === 0 ? "th" : "td");
            td.textContent = cell;
            tr.appendChild(td);
          });
          table.appendChild(tr);
        });
      });
  });

  if (!grid.dataset.arrange) return;
  function save() {
    var tiles = Array.from(grid.querySelectorAll(".tile")).map(function (t) {
      return {id: t.dataset.tile, w: t.dataset.w};
    });
    fetch(grid.dataset.layout, {method: "POST", credentials: "same-origin", body: JSON.stringify({tiles: tiles}),
                                headers: {"Content-Type": "application/json", "X-CSRFToken": token}});
  }
  var dragged = null;
  grid.querySelectorAll(".tile").forEach(function (tile) {
    tile.addEventListener("dragstart", function () { dragged = tile; tile.classList.add("opacity-50"); });
    tile.addEventListener("dragend", function () { tile.classList.remove("opacity-50"); });
    tile.addEventListener("dragover", function (e) { e.preventDefault(); });
    tile.addEventListener("drop", function (e) {
      e.preventDefault();
      if (!dragged || dragged === tile) return;
      var tiles = Array.from(grid.children);
      if (tiles.indexOf(dragged) < tiles.indexOf(tile)) tile.after(dragged); else tile.before(dragged);
      save();
    });
    tile.querySelectorAll(".move").forEach(function (b) {
      b.addEventListener("click", function () {
        if (b.dataset.dir === "-1" && tile.previousElementSibling) tile.previousElementSibling.before(tile);
        if (b.dataset.dir === "1" && tile.nextElementSibling) tile.nextElementSibling.after(tile);
        save();
      });
    });
  });
})();
