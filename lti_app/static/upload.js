/* Course materials: files or whole folders go from the browser straight to S3 in presigned parts (the tool only
   signs them), with a progress bar and text per file, resume after a failure, and the server's own message on a
   refusal. Delete and rename call the tool's JSON routes. */
(function () {
  "use strict";
  var root = document.getElementById("materials");
  if (!root) { return; }
  var t = root.dataset.t, csrf = root.dataset.csrf;
  var routes = { start: root.dataset.start, parts: root.dataset.parts, complete: root.dataset.complete,
                 rename: root.dataset.rename, remove: root.dataset.remove };

  function humanSize(n) {
    if (n < 1024) { return n + (n === 1 ? " byte" : " bytes"); }
    var units = ["KB", "MB", "GB", "TB"], v = n, i = -1;
    do { v /= 1024; i += 1; } while (v >= 1024 && i < units.length - 1);
    return v.toFixed(1) + " " + units[i];
  }

  function post(url, data) {
    var body = new URLSearchParams(data);
    body.set("t", t); body.set("csrf_token", csrf);
    return fetch(url, { method: "POST", body: body, headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) { throw new Error(j.message || ("The tool refused (" + r.status + "); nothing was changed.")); }
          return j;
        });
      });
  }

  function putPart(url, blob, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();  /* XMLHttpRequest reports upload progress; fetch does not */
      xhr.open("PUT", url);
      xhr.upload.onprogress = function (ev) { if (ev.lengthComputable) { onProgress(ev.loaded); } };
      xhr.onload = function () { if (xhr.status === 200) { resolve(); } else { reject(new Error("The storage refused a part (" + xhr.status + ").")); } };
      xhr.onerror = function () { reject(new Error("The connection dropped.")); };
      xhr.send(blob);
    });
  }

  function row(path, size) {
    var li = document.createElement("li");
    var label = document.createElement("span"); label.textContent = path + " (" + humanSize(size) + ")";
    var bar = document.createElement("progress"); bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + path);
    var text = document.createElement("span"); text.className = "upload-text"; text.setAttribute("role", "status");
    li.append(label, " ", bar, " ", text);
    document.getElementById("upload-list").append(li);
    return { li: li, bar: bar, text: text };
  }

  function sendParts(job, ui, urls, skip) {
    var done = skip.length * job.partBytes, chain = Promise.resolve();
    Object.keys(urls).forEach(function (k) {
      var n = Number(k), blob = job.file.slice((n - 1) * job.partBytes, n * job.partBytes);
      chain = chain.then(function () {
        return putPart(urls[k], blob, function (loaded) {
          var sent = Math.min(job.file.size, done + loaded);
          ui.bar.value = job.file.size ? Math.round(100 * sent / job.file.size) : 100;
          ui.text.textContent = ui.bar.value + "% (" + humanSize(sent) + " of " + humanSize(job.file.size) + ")";
        }).then(function () { done += blob.size; });
      });
    });
    return chain.then(function () { return post(routes.complete, { path: job.path, upload_id: job.uploadId, parts: job.parts }); });
  }

  function resumable(job, ui, err) {
    ui.text.textContent = err.message + " ";
    if (!job.uploadId) { return Promise.resolve(false); }
    var again = document.createElement("button"); again.type = "button"; again.textContent = "Resume " + job.path;
    ui.li.append(again);
    return new Promise(function (resolve) {
      again.addEventListener("click", function () {
        again.remove();
        post(routes.parts, { path: job.path, upload_id: job.uploadId, parts: job.parts })
          .then(function (info) { return sendParts(job, ui, info.urls, info.stored); })
          .then(function () { ui.bar.value = 100; ui.text.textContent = "Uploaded."; resolve(true); },
                function (e) { resolve(resumable(job, ui, e)); });
      });
      again.focus();
    });
  }

  function uploadOne(file, path, onConflict) {
    var ui = row(path, file.size), job = { file: file, path: path };
    return post(routes.start, { path: path, size: file.size, on_conflict: onConflict })
      .then(function (info) {
        job.path = info.path; job.uploadId = info.upload_id; job.parts = info.parts; job.partBytes = info.part_bytes;
        var urls = {}; info.urls.forEach(function (u, i) { urls[i + 1] = u; });
        return sendParts(job, ui, urls, []);
      })
      .then(function () { ui.bar.value = 100; ui.text.textContent = "Uploaded."; return true; },
            function (err) { return resumable(job, ui, err); });
  }

  var form = document.getElementById("upload");
  var status = document.getElementById("upload-status");
  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var prefix = form.elements.folder.value.replace(/^\/+|\/+$/g, "");
      var chosen = [];
      [form.elements.files, form.elements.folder_files].forEach(function (input) {
        Array.prototype.forEach.call(input.files, function (f) {
          var rel = f.webkitRelativePath || f.name;
          chosen.push({ file: f, path: prefix ? prefix + "/" + rel : rel });
        });
      });
      if (!chosen.length) { status.textContent = "Choose files or a folder first."; form.elements.files.focus(); return; }
      var total = chosen.reduce(function (s, c) { return s + c.file.size; }, 0);
      var left = Number(root.dataset.allowance) - Number(root.dataset.used);
      if (total > left) {
        status.textContent = "These files (" + humanSize(total) + ") do not fit: the course has " + humanSize(left) +
          " of its " + humanSize(Number(root.dataset.allowance)) + " storage allowance left. Nothing was uploaded.";
        return;
      }
      var mode = form.querySelector("input[name=on_conflict]:checked").value, ok = true;
      status.textContent = "Uploading " + chosen.length + " file(s), " + humanSize(total) + "…";
      chosen.reduce(function (p, c) {
        return p.then(function () { return uploadOne(c.file, c.path, mode).then(function (r) { ok = ok && r; }); });
      }, Promise.resolve()).then(function () {
        if (ok) { status.textContent = "All files uploaded. Refreshing the list…"; window.location.reload(); }
        else { status.textContent = "Some files were not uploaded; see the messages above."; }
      });
    });
  }

  root.addEventListener("submit", function (e) {
    var f = e.target;
    if (!f.classList.contains("material-action")) { return; }
    e.preventDefault();
    var out = f.querySelector("[role=status]");
    var data = { path: f.dataset.path };
    if (f.elements.new_path) { data.new_path = f.elements.new_path.value; }
    post(f.dataset.action === "rename" ? routes.rename : routes.remove, data)
      .then(function () { out.textContent = "Done. Refreshing the list…"; window.location.reload(); },
            function (err) { out.textContent = err.message; });
  });
})();
