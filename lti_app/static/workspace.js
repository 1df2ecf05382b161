/* Poll the workspace status while it is changing and update the page in place: the progress steps (with their
   state in words), the message, and, once it settles, the section itself (its buttons) fetched again, never a
   reload. Only the status line (#ws-status, role=status) is announced, and only when the state changes. */
(function () {
  "use strict";
  var box = document.getElementById("ws");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var settled = ["running", "stopped", "hibernated", "terminated", "failed"];
  var lastLabel = null;
  function set(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text || ""; } }
  function steps(step) {
    var items = box.querySelectorAll(".steps li");
    for (var i = 0; i < items.length; i++) {
      var done = i < step, current = i === step;
      items[i].className = done ? "done" : "";
      if (current) { items[i].setAttribute("aria-current", "step"); } else { items[i].removeAttribute("aria-current"); }
      var state = items[i].querySelector(".step-state");
      if (state) { state.textContent = "(" + (done ? "done" : current ? "in progress" : "to do") + ")"; }
    }
  }
  function announce(s) {
    if (s.label === lastLabel) { return; }
    lastLabel = s.label;
    set("ws-status", "Your workspace: " + s.label + ". " + (s.message || ""));
  }
  function refreshSection(s) {  // the buttons depend on the state: take the section from the page, in place
    fetch(window.location.href, {headers: {"Accept": "text/html"}}).then(function (r) { return r.text(); }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("ws");
      if (!fresh) { return; }
      var status = document.getElementById("ws-status").textContent;
      box.innerHTML = fresh.innerHTML;
      set("ws-status", status);
    }).catch(function () { setTimeout(function () { refreshSection(s); }, 5000); });
  }
  function tick() {
    fetch(url, {headers: {"Accept": "application/json"}}).then(function (r) { return r.json(); }).then(function (s) {
      set("ws-label", s.label);
      set("ws-message", s.message);
      steps(s.step);
      var connect = document.getElementById("ws-connect");
      if (s.ssh_command && connect) {  /* absent without an SSH key: the page asks for one instead */
        set("ws-ssh", s.ssh_command);
        set("ws-jupyter", s.jupyter_tunnel);
        connect.hidden = false;
      }
      announce(s);
      if (settled.indexOf(s.state) >= 0) { refreshSection(s); } else { setTimeout(tick, 2000); }
    }).catch(function () { setTimeout(tick, 5000); });
  }
  var initial = document.getElementById("ws-label").textContent;
  lastLabel = initial;
  if (["Running", "Stopped", "Hibernated", "Removed", "Could not start"].indexOf(initial) < 0) { setTimeout(tick, 2000); }
})();
