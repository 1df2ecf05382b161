// After a refused save the page opens on its error summary: move the keyboard and screen-reader focus there.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
