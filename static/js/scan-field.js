/*
 * Scan field: one text input fed by a handheld scanner (a keyboard that types the whole text then
 * Enter within a few milliseconds), the camera (a QR code decoded with the vendored jsQR) or the
 * keyboard. Used by the distributor's counter and, later, the provider's cheque counter.
 *
 * Markup (see templates/vouchers/counter/page.html):
 *
 *   <form data-scan-form hx-post="…" hx-target="#result" hx-sync="this:replace"
 *         data-scan-error="message shown when the server does not answer">
 *     <input name="…" autofocus required data-scan-field>
 *     <button type="button" data-scan-camera data-jsqr-src="…/jsQR.js" hidden>…</button>
 *     <div data-scan-camera-panel hidden data-starting="…" data-ready="…" data-unavailable="…">
 *       <video muted playsinline></video>
 *       <p role="status" data-scan-camera-status></p>
 *       <button type="button" data-scan-camera-stop>…</button>
 *     </div>
 *   </form>
 *   <div id="result">…</div>
 *
 * Scans that come back to back (the provider's cheque counter): give the form `data-scan-queue`,
 * `hx-sync="this:queue all"` and `novalidate`. Each scan's text is read the moment Enter is
 * pressed and the field emptied at once, so the next code can be typed right away. Scans made
 * while a request is in flight wait in the page and leave together as soon as it ends (the field's
 * name repeated, in scan order), so a burst of scans costs two round trips, not one per scan, and
 * none is dropped. The server answers one result per text, in order. The request's triggering
 * event carries the texts (`scanTexts`) and, for a batch, the submit events (`scanEvents`).
 *
 * What it guarantees:
 * - the field has focus from the first paint (the `autofocus` attribute in the HTML does that,
 *   before any script runs) and gets it back after every swap of the result region, which is
 *   the only thing htmx replaces: the form itself is never swapped;
 * - as soon as htmx has read the field's value for a request, the field is emptied, so what is
 *   typed or scanned while the request is in flight stays in the field for the next one;
 * - refusals the server explains (400, 404, 409, 422) are shown in the result region like any
 *   answer; a server that does not answer gets a message, and the last value is put back.
 *
 * Also: buttons with `data-print` print the page (the receipt), so templates need no inline script.
 */
(function () {
  "use strict";

  var SHOWN_ERRORS = [400, 404, 409, 422];
  var MAX_DECODE_WIDTH = 640; // frames are scaled down before decoding: fast enough on a laptop

  function focusField(input) {
    if (document.activeElement !== input) {
      input.focus({ preventScroll: true });
    }
    var end = input.value.length;
    try {
      input.setSelectionRange(end, end);
    } catch (ignored) {
      /* some input types have no selection */
    }
  }

  function showError(region, text) {
    if (!region || !text) {
      return;
    }
    var box = document.createElement("div");
    box.className = "verdict-error";
    box.setAttribute("role", "alert");
    var paragraph = document.createElement("p");
    paragraph.textContent = text;
    box.appendChild(paragraph);
    region.replaceChildren(box);
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      if (window.jsQR) {
        resolve();
        return;
      }
      var script = document.createElement("script");
      script.src = src;
      script.onload = function () {
        resolve();
      };
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  function setUpCamera(form, input) {
    var button = form.querySelector("[data-scan-camera]");
    var panel = form.querySelector("[data-scan-camera-panel]");
    var media = navigator.mediaDevices;
    if (!button || !panel || !media || !media.getUserMedia) {
      return; // no camera API (or not a secure context): the button stays hidden
    }
    var video = panel.querySelector("video");
    var status = panel.querySelector("[data-scan-camera-status]");
    var stopButton = panel.querySelector("[data-scan-camera-stop]");
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    var stream = null;
    var frame = 0;

    function say(text) {
      if (status) {
        status.textContent = text || "";
      }
    }

    function stop() {
      cancelAnimationFrame(frame);
      if (stream) {
        stream.getTracks().forEach(function (track) {
          track.stop();
        });
      }
      stream = null;
      video.srcObject = null;
      panel.hidden = true;
      button.setAttribute("aria-expanded", "false");
      focusField(input);
    }

    function decode() {
      if (!stream) {
        return;
      }
      if (video.readyState >= video.HAVE_ENOUGH_DATA && video.videoWidth) {
        var scale = Math.min(1, MAX_DECODE_WIDTH / video.videoWidth);
        canvas.width = Math.round(video.videoWidth * scale);
        canvas.height = Math.round(video.videoHeight * scale);
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        var image = context.getImageData(0, 0, canvas.width, canvas.height);
        var code = window.jsQR(image.data, image.width, image.height, {
          inversionAttempts: "dontInvert",
        });
        if (code && code.data) {
          stop();
          input.value = code.data.trim();
          form.requestSubmit();
          return;
        }
      }
      frame = requestAnimationFrame(decode);
    }

    button.hidden = false;
    button.addEventListener("click", function () {
      if (stream) {
        return;
      }
      panel.hidden = false;
      button.setAttribute("aria-expanded", "true");
      say(panel.dataset.starting);
      focusField(input); // a handheld scanner keeps working while the camera is open
      Promise.all([
        loadScript(button.dataset.jsqrSrc),
        media.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false }),
      ])
        .then(function (results) {
          stream = results[1];
          video.srcObject = stream;
          return video.play();
        })
        .then(function () {
          say(panel.dataset.ready);
          decode();
        })
        .catch(function () {
          var message = panel.dataset.unavailable;
          stop();
          panel.hidden = false;
          say(message);
        });
    });
    if (stopButton) {
      stopButton.addEventListener("click", function () {
        stop();
        say("");
      });
    }
    document.addEventListener("visibilitychange", function () {
      if (document.hidden && stream) {
        stop();
      }
    });
  }

  function attach(form) {
    var input = form.querySelector("[data-scan-field]");
    if (!input || form.dataset.scanReady) {
      return;
    }
    form.dataset.scanReady = "1";
    var targetSelector = form.getAttribute("hx-target");
    var region = targetSelector ? document.querySelector(targetSelector) : null;
    var lastSent = "";

    if (!document.activeElement || document.activeElement === document.body) {
      focusField(input);
    }
    // Back from the receipt, the browser may restore the page from its cache without focus.
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        focusField(input);
      }
    });

    // A scanner that sends CR and LF, or an Enter on an empty field, sends nothing.
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !input.value.trim()) {
        event.preventDefault();
      }
    });

    var queued = form.hasAttribute("data-scan-queue");
    var inFlight = false;
    var waiting = []; // submit events of scans made while a request was in flight

    function sendWaiting() {
      var batch = waiting.splice(0);
      var trigger = new CustomEvent("scan:batch");
      trigger.scanTexts = batch.map(function (event) {
        return event.scanTexts[0];
      });
      trigger.scanEvents = batch;
      // While the answer that just came is still being handled, htmx queues this request
      // (hx-sync) and sends it the moment it is done.
      var sent = window.htmx.ajax("POST", form.getAttribute("hx-post"), {
        source: form,
        event: trigger,
      });
      if (sent && sent.catch) {
        sent.catch(function () {
          /* shown by the htmx:sendError and htmx:responseError handlers below */
        });
      }
    }

    if (queued) {
      // Capture phase on the document: runs before htmx's own submit listener on the form.
      document.addEventListener(
        "submit",
        function (event) {
          if (event.target !== form) {
            return;
          }
          var text = input.value;
          if (!text.trim()) {
            event.preventDefault();
            event.stopPropagation();
            focusField(input);
            return;
          }
          event.scanTexts = [text];
          input.value = "";
          if (inFlight) {
            event.preventDefault();
            event.stopPropagation(); // htmx does not see it: it leaves with the next batch
            waiting.push(event);
          }
        },
        true
      );
      form.addEventListener("htmx:beforeRequest", function (event) {
        if (event.detail.elt === form) {
          inFlight = true;
        }
      });
      form.addEventListener("htmx:afterRequest", function (event) {
        if (event.detail.elt !== form) {
          return;
        }
        inFlight = false;
        if (waiting.length) {
          sendWaiting();
        }
      });
    }

    // htmx has read the parameters: empty the field for what comes next.
    form.addEventListener("htmx:configRequest", function (event) {
      if (event.detail.elt !== form) {
        return;
      }
      var trigger = event.detail.triggeringEvent;
      if (queued && trigger && trigger.scanTexts) {
        // After a failure only a single scan is put back: several would run together.
        lastSent = trigger.scanTexts.length === 1 ? trigger.scanTexts[0] : "";
        event.detail.parameters[input.name] = trigger.scanTexts;
        return;
      }
      lastSent = input.value;
      input.value = "";
    });

    if (!region) {
      return;
    }

    region.addEventListener("htmx:beforeSwap", function (event) {
      if (event.detail.target === region && SHOWN_ERRORS.indexOf(event.detail.xhr.status) !== -1) {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
      }
    });

    region.addEventListener("htmx:afterSwap", function (event) {
      if (event.detail.target !== region) {
        return;
      }
      var config = event.detail.requestConfig;
      var fromScan = config && config.elt === form;
      if (!fromScan) {
        // A form inside the region was sent back with errors: go to the first one.
        var invalid = region.querySelector("[aria-invalid='true'], [data-scan-focus]");
        if (invalid) {
          invalid.focus();
          return;
        }
      }
      focusField(input);
    });

    function failed(event) {
      var elt = event.target;
      if (elt !== form && !region.contains(elt)) {
        return;
      }
      showError(region, form.dataset.scanError);
      if (elt === form && !input.value) {
        input.value = lastSent; // let the agent send it again with Enter
      }
      focusField(input);
    }
    document.body.addEventListener("htmx:responseError", failed);
    document.body.addEventListener("htmx:sendError", failed);

    setUpCamera(form, input);
  }

  function init() {
    document.querySelectorAll("form[data-scan-form]").forEach(attach);
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () {
        window.print();
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
