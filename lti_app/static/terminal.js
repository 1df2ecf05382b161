/* The browser terminal: xterm.js (vendored) over a WebSocket to the gateway, with a one-time ticket per connection.
   Binary frames carry the terminal's bytes; text frames are JSON control messages. A dropped connection is retried
   with a new ticket; the gateway keeps the shell for a while and replays the recent screen. */
(function () {
  "use strict";
  var el = document.getElementById("terminal");
  if (!el || typeof Terminal === "undefined") { return; }
  var status = document.getElementById("term-status");
  var watchers = document.getElementById("term-watchers");
  var shareButton = document.getElementById("term-share");
  var owner = el.dataset.owner === "1";
  var term = new Terminal({cursorBlink: owner, disableStdin: !owner, fontSize: 14, scrollback: 5000});
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  var sock = null, finished = false, retries = 0;
  var encoder = new TextEncoder();

  function say(message) { status.textContent = message; }

  function post(url, fields) {
    var body = new URLSearchParams(fields);
    body.set("t", el.dataset.t);
    body.set("csrf_token", el.dataset.csrf);
    return fetch(url, {method: "POST", body: body, headers: {"Accept": "application/json"}}).then(function (r) {
      return r.json().catch(function () { return {message: "The terminal could not be opened. Reload the page."}; })
        .then(function (data) { if (!r.ok) { throw new Error(data.message || "The terminal could not be opened."); } return data; });
    });
  }

  function onControl(m) {
    if (m.type === "watchers" && watchers) {
      watchers.textContent = m.names.length ? "Watching now: " + m.names.join(", ") : "";
    } else if (m.type === "notice") {
      say(m.message);
    } else if (m.type === "error" || m.type === "closed") {
      finished = true;
      say(m.message);
    }
  }

  function connect() {
    post(el.dataset.ticketUrl, {cols: term.cols, rows: term.rows}).then(function (data) {
      sock = new WebSocket(data.url);
      sock.binaryType = "arraybuffer";
      sock.onopen = function () { retries = 0; term.reset(); say(owner ? "Connected." : "Watching (view only)."); if (owner) { term.focus(); } };
      sock.onmessage = function (ev) {
        if (typeof ev.data === "string") { onControl(JSON.parse(ev.data)); } else { term.write(new Uint8Array(ev.data)); }
      };
      sock.onclose = function () {
        if (finished) { return; }
        if (retries < 5) { retries += 1; say("Connection lost; reconnecting…"); setTimeout(connect, 800 * retries); }
        else { say("Disconnected. Reload the page to reconnect."); }
      };
    }).catch(function (err) { say(err.message); });
  }

  if (owner) {
    term.onData(function (d) { if (sock && sock.readyState === 1) { sock.send(encoder.encode(d)); } });
    term.onResize(function (size) {
      if (sock && sock.readyState === 1) { sock.send(JSON.stringify({type: "resize", cols: size.cols, rows: size.rows})); }
    });
  }
  window.addEventListener("resize", function () { fit.fit(); });
  if (shareButton) {
    shareButton.addEventListener("click", function () {
      var start = shareButton.dataset.shared !== "1";
      post(el.dataset.shareUrl, {action: start ? "start" : "stop"}).then(function (data) {
        shareButton.dataset.shared = data.shared ? "1" : "0";
        shareButton.textContent = data.shared ? "Stop sharing" : "Share with course staff (view only)";
        if (!data.shared && watchers) { watchers.textContent = ""; }
      }).catch(function (err) { say(err.message); });
    });
  }
  connect();
}());
