/* Wait for the tool's registration page to say it is done (org.imsglobal.lti.close), then show the result. */
(function () {
  var cfg = JSON.parse(document.getElementById("demo-config").textContent);
  var status = document.getElementById("demo-install-status");
  var popup = document.getElementById("demo-open-window");
  if (popup) {
    popup.addEventListener("click", function () { window.open(cfg.frameUrl, "cwc-registration", "width=720,height=720"); });
  }
  window.addEventListener("message", function (event) {
    if ((cfg.toolOrigins || []).indexOf(event.origin) === -1) { return; }
    if (!event.data || event.data.subject !== "org.imsglobal.lti.close") { return; }
    if (status) { status.textContent = "Registration finished. Loading the registered tool…"; }
    window.location.assign(cfg.adminUrl);
  });
})();
