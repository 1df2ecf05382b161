/* Platform side of `lti.frameResize`: the tool's frame grows (or shrinks, never below 300 px) to the height the
   tool asks for, as Canvas does; only messages from the tool's origin and from the frame itself count. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("demo-config").textContent);
  var allowed = cfg.toolOrigins || [];
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || typeof data !== "object" || data.subject !== "lti.frameResize") { return; }
    if (allowed.indexOf(event.origin) === -1) { return; }
    var frames = document.querySelectorAll("iframe.tool-frame");
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow !== event.source) { continue; }
      var height = Number(data.height);
      if (!isFinite(height) || height <= 0) { return; }
      height = Math.max(300, Math.min(Math.round(height), 20000));
      frames[i].style.height = height + "px";
      frames[i].setAttribute("data-resized-to", String(height));
    }
  });
})();
