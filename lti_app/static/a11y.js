// After a refused save the page opens on its error summary: move the keyboard and screen-reader focus there.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();

// The staff tab groups work as plain <details>; with script, one is open at a time, and Escape or a click elsewhere
// closes it (Escape puts the focus back on its summary).
(function () {
  "use strict";
  var groups = Array.prototype.slice.call(document.querySelectorAll("nav.tabs details.tab-group"));
  if (!groups.length) { return; }
  groups.forEach(function (group) {
    group.addEventListener("toggle", function () {
      if (!group.open) { return; }
      groups.forEach(function (other) { if (other !== group) { other.open = false; } });
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    groups.forEach(function (group) {
      if (group.open) { group.open = false; group.querySelector("summary").focus(); }
    });
  });
  document.addEventListener("click", function (event) {
    groups.forEach(function (group) { if (group.open && !group.contains(event.target)) { group.open = false; } });
  });
})();
