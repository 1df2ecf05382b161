/* Poll the workspace status while it is changing, and update the page in place. */
(function () {
  var box = document.getElementById("ws");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var settled = ["running", "stopped", "hibernated", "terminated", "failed"];
  function set(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text || ""; } }
  function tick() {
    fetch(url, {headers: {"Accept": "application/json"}}).then(function (r) { return r.json(); }).then(function (s) {
      set("ws-label", s.label);
      set("ws-message", s.message);
      var steps = box.querySelectorAll(".steps li");
      for (var i = 0; i < steps.length; i++) { steps[i].className = i < s.step ? "done" : ""; }
      var connect = document.getElementById("ws-connect");
      if (s.ssh_command && connect) {  /* absent without an SSH key: the page asks for one instead */
        set("ws-ssh", s.ssh_command);
        set("ws-jupyter", s.jupyter_tunnel);
        connect.hidden = false;
      }
      if (settled.indexOf(s.state) >= 0) { window.location.reload(); } else { setTimeout(tick, 2000); }
    }).catch(function () { setTimeout(tick, 5000); });
  }
  var initial = document.getElementById("ws-label").textContent;
  if (["Running", "Stopped", "Hibernated", "Removed", "Could not start"].indexOf(initial) < 0) { setTimeout(tick, 2000); }
})();
