/* Inside the LMS frame: tell the platform how tall the page is (1EdTech/Canvas `lti.frameResize`), on load and
   whenever the content changes size, so a long page is not scrolled inside a fixed frame. Sent only to the
   platform's own origins (from the course's launch), never to "*". */
(function () {
  "use strict";
  if (window.parent === window) { return; }
  var me = document.getElementById("cwc-frame");
  var origins = ((me && me.getAttribute("data-origins")) || "").split(" ").filter(Boolean);
  if (!origins.length) { return; }
  var last = 0;
  function send() {
    var height = Math.ceil(document.documentElement.scrollHeight);
    if (height === last) { return; }
    last = height;
    origins.forEach(function (origin) {
      window.parent.postMessage({subject: "lti.frameResize", height: height}, origin);
    });
  }
  if (document.readyState === "complete") { send(); } else { window.addEventListener("load", send); }
  if (window.ResizeObserver) { new ResizeObserver(send).observe(document.body); }
})();
