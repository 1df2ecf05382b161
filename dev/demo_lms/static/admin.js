/* Notice when the tool has registered: its org.imsglobal.lti.close message (frame or opener), or a new row
   in the registered tools (polled, for tools whose page refuses to be framed). */
(function () {
  var cfg = JSON.parse(document.getElementById("demo-config").textContent);
  var status = document.getElementById("demo-install-status");
  var finished = false;
  function done(text) {
    if (finished) { return; }
    finished = true;
    if (status) { status.textContent = text; }
    setTimeout(function () { window.location.assign(cfg.adminUrl); }, 800);
  }
  window.addEventListener("message", function (event) {
    if ((cfg.toolOrigins || []).indexOf(event.origin) === -1) { return; }
    if (!event.data || event.data.subject !== "org.imsglobal.lti.close") { return; }
    done("Registration finished. Loading the registered tool…");
  });
  function poll() {
    if (finished) { return; }
    fetch(cfg.statusUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (body) { if (body.count > cfg.toolCount) { done("Registered " + body.latest + "."); } })
      .catch(function () { /* try again */ })
      .finally(function () { setTimeout(poll, 1500); });
  }
  if (status) { setTimeout(poll, 1500); }  /* only while a registration is under way */
})();
