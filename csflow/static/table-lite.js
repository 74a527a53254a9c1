/* csflow: the part of bootstrap-table that Great Expectations' Data Docs index
   uses (columns and rows given as data, a search box, sorting by a column, a
   link per row), so the index renders without fetching bootstrap-table from a
   CDN. Loaded after jQuery; the index calls $(table).bootstrapTable(options). */
(function ($) {
  "use strict";
  function text(html) { var d = document.createElement("div"); d.innerHTML = html; return d.textContent; }

  $.fn.bootstrapTable = function (options) {
    return this.each(function () {
      var $table = $(this);
      if (typeof options === "string") {  // 'resetSearch', 'clearFilterControl'
        var state = $table.data("table-lite");
        if (state) { state.search.val(""); state.draw(); }
        return;
      }
      var columns = options.columns, rows = options.data.slice();
      var sortField = options.sortName, descending = options.sortOrder === "desc";
      var attributes = window[options.rowAttributes];
      var search = $('<input type="search" class="form-control form-control-sm mb-2" placeholder="Search">');
      $(options.toolbar || []).append(search);
      if (!options.toolbar) { search.insertBefore($table); }
      var head = $("<tr>");
      columns.forEach(function (c) {
        var th = $("<th>").text(c.title).css("cursor", "pointer").attr("scope", "col");
        th.on("click", function () {
          var field = c.sortName || c.field;
          descending = field === sortField ? !descending : false;
          sortField = field;
          draw();
        });
        head.append(th);
      });
      $table.addClass("table table-sm table-hover").empty()
        .append($("<thead>").append(head)).append("<tbody>");
      function key(row) { var v = row[sortField]; return typeof v === "string" ? text(v).trim() : v; }
      function draw() {
        var words = search.val().toLowerCase().split(/\s+/).filter(Boolean);
        if (sortField) {
          rows.sort(function (a, b) {
            var x = key(a), y = key(b), order = x < y ? -1 : x > y ? 1 : 0;
            return descending ? -order : order;
          });
        }
        var body = $table.find("tbody").empty();
        rows.forEach(function (row) {
          var cells = columns.map(function (c) { return row[c.field] == null ? "" : String(row[c.field]); });
          var haystack = text(cells.join(" ")).toLowerCase();
          if (!words.every(function (w) { return haystack.indexOf(w) >= 0; })) { return; }
          var tr = $("<tr>").css("cursor", "pointer");
          if (attributes) { tr.attr(attributes(row)); }
          cells.forEach(function (html, i) { tr.append($("<td>").html(html).css("text-align", columns[i].align || "")); });
          tr.on("click", function () { $table.trigger("click-row.bs.table", [row, tr]); });
          body.append(tr);
        });
      }
      search.on("input", draw);
      $table.data("table-lite", { search: search, draw: draw });
      draw();
    });
  };
})(jQuery);
