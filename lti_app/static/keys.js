/* Create a key: download the private key (once), then reload so the page lists the new key.
   Without JavaScript the form posts as usual and the browser downloads the key. */
(function () {
  var form = document.getElementById("key-generate");
  if (!form || !window.fetch || !window.URL || !window.URLSearchParams) { return; }
  var status = document.getElementById("key-status");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    form.querySelector("button").disabled = true;
    fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin"})
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        var named = (r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
        return r.blob().then(function (blob) {
          var a = document.createElement("a");
          a.href = URL.createObjectURL(blob);
          a.download = named ? named[1] : "cwc_key";
          document.body.appendChild(a);
          a.click();
          if (status) { status.textContent = "Your key was created and downloaded."; }
          setTimeout(function () { window.location.reload(); }, 800);
        });
      })
      .catch(function () {
        if (status) { status.textContent = "The key could not be created. Reload the page and try again."; }
        form.querySelector("button").disabled = false;
      });
  });
})();
