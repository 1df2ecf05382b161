/* While the roster syncs, re-read the wizard every 3 s and fill in the staff step once the TAs are known
   (only that fieldset is replaced: what the instructor typed elsewhere stays). */
(function () {
  "use strict";
  var hint = document.getElementById("roster-syncing");
  if (!hint || !window.fetch || !window.DOMParser) { return; }
  var url = hint.getAttribute("data-url");
  var tries = 0;
  function tick() {
    tries += 1;
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.text(); }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("staff-step");
      if (fresh && !fresh.querySelector("#roster-syncing")) {
        document.getElementById("staff-step").innerHTML = fresh.innerHTML;
      } else if (tries < 40) { setTimeout(tick, 3000); }
    }).catch(function () { if (tries < 40) { setTimeout(tick, 5000); } });
  }
  setTimeout(tick, 3000);
})();
