(function () {
  "use strict";
  // Sorting is the page's only script: without it every row is still there, in rank order.
  function value(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    var data = cell.getAttribute("data-value");
    return data === null ? cell.textContent.trim() : data;
  }
  function sort(table, header, index) {
    var numeric = header.getAttribute("data-type") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) {
      other.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    // A row's message is the row after it (tr.note): it moves with its row.
    var rows = Array.prototype.filter.call(body.rows, function (row) {
      return row.classList.contains("row");
    });
    var notes = new Map();
    rows.forEach(function (row) {
      var next = row.nextElementSibling;
      if (next && next.classList.contains("note")) { notes.set(row, next); }
    });
    rows.sort(function (a, b) {
      var x = value(a, index), y = value(b, index);
      if (x === "" || y === "") { return (x === "") - (y === ""); }  // empty cells last
      var order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) {
      body.appendChild(row);
      if (notes.has(row)) { body.appendChild(notes.get(row)); }
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.board"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = header.textContent;
      header.textContent = "";
      header.appendChild(button);
      button.addEventListener("click", function () { sort(table, header, index); });
    });
  });
}());
