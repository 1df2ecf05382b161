// Start the vendored asciinema-player on the recording named by the #player element's data-cast URL.
(function () {
  var el = document.getElementById("player");
  if (!el || !window.AsciinemaPlayer) { return; }
  window.AsciinemaPlayer.create(el.getAttribute("data-cast"), el, { fit: "width", idleTimeLimit: 2 });
})();
