/* The browser terminal: xterm.js (vendored) over a WebSocket to the gateway, with a one-time ticket per connection.
   Binary frames carry the terminal's bytes; text frames are JSON control messages. A dropped connection (or the
   gateway restarting) is retried with a new ticket and backoff; the shell lives on in tmux on the workspace, and each
   (re)connection sends the window's size. A refusal (the ticket route's or the gateway's message) is shown and final.
   Ctrl+Shift+C / Ctrl+Shift+V copy and paste. */
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
  var sock = null, finished = false, attempts = 0, lastWhy = "";
  var MAX_ATTEMPTS = 8;  /* about a minute of backoff: a gateway restart or a network blip */
  var encoder = new TextEncoder();

  function say(message) { status.textContent = message; }

  function post(url, fields) {
    var body = new URLSearchParams(fields);
    body.set("t", el.dataset.t);
    body.set("csrf_token", el.dataset.csrf);
    return fetch(url, {method: "POST", body: body, headers: {"Accept": "application/json"}}).then(function (r) {
      return r.json().catch(function () { return {message: "The terminal could not be opened. Reload the page."}; })
        .then(function (data) {
          if (!r.ok) { var e = new Error(data.message || "The terminal could not be opened."); e.refused = true; throw e; }
          return data;
        });
    });
  }

  function sendSize() {
    if (owner && sock && sock.readyState === 1) { sock.send(JSON.stringify({type: "resize", cols: term.cols, rows: term.rows})); }
  }

  function onControl(m) {
    if (m.type === "watchers" && watchers) {
      watchers.textContent = m.names.length ? "Watching now: " + m.names.join(", ") : "";
    } else if (m.type === "notice") {
      say(m.message);
    } else if (m.type === "error" || m.type === "closed") {
      finished = !m.retry;  /* the gateway restarting says retry: reconnect; anything else is final */
      lastWhy = m.message;
      say(m.message);
    }
  }

  function retry(why) {
    lastWhy = why || lastWhy;
    if (attempts >= MAX_ATTEMPTS) {
      finished = true;
      say((lastWhy ? lastWhy + " " : "") + "Disconnected: reload the page to try again.");
      return;
    }
    var delay = Math.min(15000, 500 * Math.pow(2, attempts)) + Math.floor(Math.random() * 300);
    attempts += 1;
    say((lastWhy ? lastWhy + " " : "Connection lost. ") + "Reconnecting in " + Math.round(delay / 1000) + " s…");
    setTimeout(connect, delay);
  }

  function connect() {
    post(el.dataset.ticketUrl, {cols: term.cols, rows: term.rows}).then(function (data) {
      var opened = false;
      sock = new WebSocket(data.url);
      sock.binaryType = "arraybuffer";
      sock.onopen = function () {
        opened = true; attempts = 0; lastWhy = ""; term.reset(); sendSize();
        say(owner ? "Connected." : "Watching (view only).");
        if (owner) { term.focus(); }
      };
      sock.onmessage = function (ev) {
        if (typeof ev.data === "string") { onControl(JSON.parse(ev.data)); } else { term.write(new Uint8Array(ev.data)); }
      };
      sock.onclose = function (ev) {
        if (finished) { return; }
        if (!opened) {  /* the browser hides a refused handshake's answer: say what it may be, and try again */
          retry(ev.reason || "The terminal service did not accept the connection (it may be restarting).");
        } else {
          retry(ev.reason);
        }
      };
    }).catch(function (err) {
      if (err.refused) { finished = true; say(err.message); } else { retry("The tool could not be reached."); }
    });
  }

  term.attachCustomKeyEventHandler(function (e) {  /* Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes */
    if (e.type !== "keydown" || !e.ctrlKey || !e.shiftKey || !navigator.clipboard) { return true; }
    if (e.code === "KeyC") {
      if (term.hasSelection()) { navigator.clipboard.writeText(term.getSelection()).catch(function () {}); }
      e.preventDefault();
      return false;
    }
    if (e.code === "KeyV" && owner) {
      navigator.clipboard.readText().then(function (text) { if (text) { term.paste(text); } }).catch(function () {
        say("Pasting needs the browser's clipboard permission; Ctrl+V or the browser's Paste also work.");
      });
      e.preventDefault();
      return false;
    }
    return true;
  });

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
