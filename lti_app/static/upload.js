/* Upload with a progress bar (XMLHttpRequest reports upload progress; fetch does not). */
(function () {
  var form = document.getElementById("upload");
  if (!form) { return; }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var bar = document.getElementById("upload-progress");
    var status = document.getElementById("upload-status");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (ev) {
      if (ev.lengthComputable) { bar.hidden = false; bar.value = Math.round(100 * ev.loaded / ev.total); status.textContent = bar.value + "% uploaded"; }
    };
    xhr.onload = function () {
      if (xhr.status === 200) { status.textContent = "Uploaded."; window.location.reload(); }
      else {
        var message = "";
        try { message = JSON.parse(xhr.responseText).message || ""; } catch (err) { message = ""; }
        status.textContent = message || ("Upload failed (" + xhr.status + "). Nothing was changed.");
      }
    };
    xhr.onerror = function () { status.textContent = "Upload failed: the connection dropped."; };
    xhr.send(new FormData(form));
  });
})();
