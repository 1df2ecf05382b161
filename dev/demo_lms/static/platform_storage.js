/* 1EdTech LTI Client Side postMessages, platform side: the course page keeps the tool's login state
   (lti.put_data / lti.get_data) so launches work when the browser blocks third-party cookies. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("demo-config").textContent);
  var allowed = cfg.toolOrigins || [];
  var memory = {};
  var SUPPORTED = ["lti.capabilities", "lti.put_data", "lti.get_data"];

  function slot(origin, key) { return "lti-storage:" + origin + ":" + key; }
  function put(origin, key, value) {
    memory[slot(origin, key)] = value;
    try { sessionStorage.setItem(slot(origin, key), JSON.stringify(value)); } catch (e) { /* memory only */ }
  }
  function get(origin, key) {
    try {
      var stored = sessionStorage.getItem(slot(origin, key));
      if (stored !== null) { return JSON.parse(stored); }
    } catch (e) { /* fall back to memory */ }
    return Object.prototype.hasOwnProperty.call(memory, slot(origin, key)) ? memory[slot(origin, key)] : undefined;
  }
  function reply(event, body) { event.source.postMessage(body, event.origin); }
  function fail(event, subject, code, message) {
    reply(event, {subject: subject + ".response", message_id: event.data.message_id, error: {code: code, message: message}});
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || typeof data !== "object" || typeof data.subject !== "string" || data.subject.indexOf("lti.") !== 0) { return; }
    if (data.subject.slice(-9) === ".response" || !event.source) { return; }
    if (allowed.indexOf(event.origin) === -1) { return; }  /* only the tool may use the storage */
    if (SUPPORTED.indexOf(data.subject) === -1) { fail(event, data.subject, "unsupported_subject", "Not supported"); return; }
    if (data.subject === "lti.capabilities") {
      reply(event, {subject: "lti.capabilities.response", message_id: data.message_id,
                    supported_messages: SUPPORTED.map(function (s) { return {subject: s}; })});
      return;
    }
    if (typeof data.key !== "string" || data.key === "") { fail(event, data.subject, "bad_request", "A key is required"); return; }
    if (data.subject === "lti.put_data") {
      put(event.origin, data.key, data.value);
      reply(event, {subject: "lti.put_data.response", message_id: data.message_id, key: data.key, value: data.value});
      return;
    }
    var value = get(event.origin, data.key);
    if (value === undefined) { fail(event, "lti.get_data", "bad_request", "Could not find key"); return; }
    reply(event, {subject: "lti.get_data.response", message_id: data.message_id, key: data.key, value: value});
  });
})();
