// finchgate: opens Finch Connect (embedded flow) and hands the result to finchgate's callback.
// The code and state go to the server in a same-origin POST with the CSRF header, never in a URL.
(function () {
  "use strict";
  var box = document.getElementById("embedded-connect");
  var status = document.getElementById("embedded-status");
  if (!box || !window.FinchConnect) {
    if (status) status.textContent = "Finch Connect could not be loaded. Check your network and start over.";
    return;
  }
  function say(text) { status.textContent = text; }
  var connect = window.FinchConnect.initialize({
    sessionId: box.dataset.sessionId,
    state: box.dataset.state,
    onSuccess: function (result) {
      say("Finishing the connection…");
      fetch(box.dataset.callback, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf },
        body: JSON.stringify({ code: result.code, state: result.state || box.dataset.state })
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (answer) {
        if (answer.body.location) { window.location.assign(answer.body.location); }
        else { say(answer.body.error || "The connection could not be completed. Start over."); }
      }).catch(function () { say("finchgate could not be reached. Start over in a moment."); });
    },
    onError: function (error) {
      say("Finch Connect reported a problem: " + (error && error.errorMessage ? error.errorMessage : "unknown") + ". Start over.");
    },
    onClose: function () { say("Finch Connect was closed. Start over when you are ready."); }
  });
  connect.open();
})();
