/*
 * Stand-in for Finch's Connect SDK (prod-cdn.tryfinch.com/…/connect.js), served by the finchgate
 * sandbox emulator at /connect.js. Same surface as the real SDK:
 *
 *   const connect = window.FinchConnect.initialize({
 *     sessionId, state,                 // from POST /connect/sessions; state is optional
 *     onSuccess({ code, state }),       // send the code to your backend
 *     onError({ errorMessage, errorType }),
 *     onClose(),
 *     zIndex,                           // optional, default 999
 *   });
 *   connect.open();                     // or open({ state }) to set the state at open time
 *   connect.close();
 *
 * open() shows Connect in a full-window iframe at
 *   {connectBase}/authorize?session=…&state=…&app_type=spa&sdk_host_url=<this page's origin>
 *     &mode=employer&sdk_version=sandbox-1
 * where connectBase is where this script was loaded from. Results arrive by postMessage as
 * { name: "finch-auth-message-v2", kind: "success" | "error" | "closed", … }; messages from any
 * other origin or window, or with another name, are ignored.
 */
(function () {
  "use strict";

  var MESSAGE_NAME = "finch-auth-message-v2";
  var SDK_VERSION = "sandbox-1";
  var DEFAULT_Z_INDEX = 999;

  // Resolve the Connect base now: document.currentScript is only set while this script runs.
  var scriptSrc = document.currentScript && document.currentScript.src;
  var scriptUrl = new URL(scriptSrc || window.location.href);
  var connectOrigin = scriptUrl.origin;
  var authorizeUrl = new URL("authorize", scriptUrl);

  function noop() {}

  function initialize(options) {
    options = options || {};
    var onSuccess = typeof options.onSuccess === "function" ? options.onSuccess : noop;
    var onError = typeof options.onError === "function" ? options.onError : noop;
    var onClose = typeof options.onClose === "function" ? options.onClose : noop;
    var zIndex = options.zIndex === undefined ? DEFAULT_Z_INDEX : options.zIndex;
    var iframe = null;

    function close() {
      window.removeEventListener("message", handleMessage);
      if (iframe) {
        iframe.remove();
        iframe = null;
      }
    }

    function handleMessage(event) {
      if (event.origin !== connectOrigin) return;
      if (!iframe || event.source !== iframe.contentWindow) return;
      var data = event.data;
      if (!data || typeof data !== "object" || data.name !== MESSAGE_NAME) return;

      switch (data.kind) {
        case "success": {
          close();
          var result = { code: data.code };
          if (data.state !== undefined) result.state = data.state;
          if (data.idpRedirectUri !== undefined) result.idpRedirectUri = data.idpRedirectUri;
          onSuccess(result);
          break;
        }
        case "error": {
          var error = data.error || {};
          if (error.shouldClose) close();
          onError({ errorMessage: error.message || "Unknown error", errorType: error.type });
          break;
        }
        case "closed":
          close();
          onClose();
          break;
        default:
          break;
      }
    }

    function open(openOptions) {
      var sessionId = options.sessionId;
      if (!sessionId) {
        onError({ errorMessage: "A sessionId is required to open Connect", errorType: "validation_error" });
        return;
      }
      var state = openOptions && openOptions.state !== undefined ? openOptions.state : options.state;
      if (iframe) close();

      var url = new URL(authorizeUrl);
      url.searchParams.set("session", sessionId);
      if (state !== undefined && state !== null && state !== "") url.searchParams.set("state", state);
      url.searchParams.set("app_type", "spa");
      url.searchParams.set("sdk_host_url", window.location.origin);
      url.searchParams.set("mode", "employer");
      url.searchParams.set("sdk_version", SDK_VERSION);

      iframe = document.createElement("iframe");
      iframe.id = "finch-connect-iframe";
      iframe.title = "Finch Connect";
      iframe.src = url.toString();
      var style = iframe.style;
      style.position = "fixed";
      style.top = "0";
      style.left = "0";
      style.width = "100%";
      style.height = "100%";
      style.border = "none";
      style.background = "rgba(0, 0, 0, 0.4)";
      style.zIndex = String(zIndex);

      window.addEventListener("message", handleMessage);
      document.body.appendChild(iframe);
    }

    return { open: open, close: close };
  }

  window.FinchConnect = { initialize: initialize };
})();
