/*
 * Provider's redemption counter: the basket of scanned cheques, held in the page.
 *
 * scan-field.js runs the field (focus, camera, each scan keeping its own text; scans made while a
 * check is in flight leave together right after it); htmx swaps the verdicts of each request into
 * the « last scan » region, one row per scan, in scan order. This script then files each verdict:
 *
 * - a valid cheque goes to the basket (a row with a hidden `codes` input inside the redeem form),
 *   unless its code is already there: then the existing row flashes and nothing is added, so a
 *   cheque scanned twice is counted once;
 * - a refused cheque goes to the refused list (the newest verdict of a code replaces older ones,
 *   and takes it out of the basket);
 * - the basket's count, total and the redeem button follow; the idempotency key is renewed when
 *   the basket changes, so a double click sends the same key but a different basket never does.
 *
 * With `data-record-timings` on the counter (the page's `?timings` query), the time from each
 * Enter to its verdict in the page is kept in `window.__verdictTimings` ({code, ms}).
 */
(function () {
  "use strict";

  var FLASH_MS = 900;
  var SHOWN_STATUSES = [429]; // scan-field.js already shows 400, 404, 409 and 422

  function euros(cents) {
    var whole = String(Math.floor(cents / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0");
    var rest = String(cents % 100).padStart(2, "0");
    return whole + "," + rest + "\u00a0€";
  }

  function fill(template, n, cents) {
    return (template || "").replace("{n}", String(n)).replace("{amount}", euros(cents));
  }

  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes); // also outside secure contexts, unlike randomUUID
    return Array.prototype.map
      .call(bytes, function (b) {
        return b.toString(16).padStart(2, "0");
      })
      .join("");
  }

  function flash(row) {
    row.classList.remove("is-new");
    void row.offsetWidth; // restart the animation
    row.classList.add("is-new");
    window.setTimeout(function () {
      row.classList.remove("is-new");
    }, FLASH_MS);
  }

  function rowFor(list, code) {
    return list.querySelector('[data-code="' + window.CSS.escape(code) + '"]');
  }

  function attach(root) {
    var scanForm = root.querySelector("form[data-scan-form]");
    var redeemForm = root.querySelector("form[data-redeem-form]");
    if (!scanForm || !redeemForm) {
      return;
    }
    var input = scanForm.querySelector("[data-scan-field]");
    var last = document.querySelector(scanForm.getAttribute("hx-target"));
    var basket = redeemForm.querySelector("[data-basket]");
    var empty = redeemForm.querySelector("[data-basket-empty]");
    var summary = redeemForm.querySelector("[data-basket-summary]");
    var hint = redeemForm.querySelector("[data-basket-hint]");
    var submit = redeemForm.querySelector("[data-redeem-submit]");
    var key = redeemForm.querySelector("[data-idempotency-key]");
    var refusedBox = root.querySelector("[data-refused-box]");
    var refused = root.querySelector("[data-refused]");
    var site = document.getElementById("id_site");
    var service = document.getElementById("id_service");
    var maxCodes = parseInt(root.dataset.maxCodes, 10) || 50;
    var timings = null;
    var enterAt = null;
    var pending = 0;

    if (root.hasAttribute("data-record-timings")) {
      timings = window.__verdictTimings = [];
    }

    function basketRows() {
      return basket.querySelectorAll("[data-code]");
    }

    function say(text) {
      if (hint) {
        hint.textContent = text || "";
      }
    }

    function update(changed) {
      var rows = basketRows();
      var cents = 0;
      rows.forEach(function (row) {
        cents += parseInt(row.dataset.valueCents, 10) || 0;
      });
      var n = rows.length;
      var data = root.dataset;
      summary.textContent =
        n === 0 ? data.summaryEmpty : fill(n === 1 ? data.summaryOne : data.summaryMany, n, cents);
      submit.textContent =
        n === 0 ? data.submitEmpty : fill(n === 1 ? data.submitOne : data.submitMany, n, cents);
      submit.disabled = n === 0;
      empty.hidden = n > 0;
      refusedBox.hidden = !refused.querySelector("[data-code]");
      if (changed) {
        key.value = newKey();
        say(n > maxCodes ? data.tooMany : "");
      }
    }

    function file(verdict) {
      var code = verdict.dataset.code;
      var inBasket = rowFor(basket, code);
      var wasRefused = rowFor(refused, code);
      if (verdict.dataset.verdict === "ok") {
        if (inBasket) {
          flash(inBasket);
          var note = document.createElement("span");
          note.className = "scan-note";
          note.textContent = root.dataset.duplicate;
          verdict.querySelector(".scan-body").appendChild(note);
          return;
        }
        if (wasRefused) {
          wasRefused.remove();
        }
        var row = verdict.cloneNode(true);
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "codes";
        hidden.value = code;
        row.insertBefore(hidden, row.querySelector("[data-basket-remove]"));
        basket.prepend(row);
        flash(row);
        update(true);
        return;
      }
      if (wasRefused) {
        wasRefused.remove();
      }
      var copy = verdict.cloneNode(true);
      refused.prepend(copy);
      flash(copy);
      if (inBasket) {
        inBasket.remove(); // the newest verdict wins: no longer redeemable
      }
      update(Boolean(inBasket));
    }

    // Enter pressed on a scanned code: the start of the time to its verdict.
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && input.value.trim()) {
        enterAt = performance.now();
      }
    });
    // Registered after scan-field.js's own listener, which put the scan's text on the event.
    document.addEventListener(
      "submit",
      function (event) {
        if (event.target !== scanForm || !event.scanTexts) {
          return;
        }
        event.redeemEnterAt = enterAt === null ? performance.now() : enterAt;
        enterAt = null;
        pending += 1;
      },
      true
    );

    function scansOf(event) {
      var config = event.detail.requestConfig;
      var trigger = config && config.triggeringEvent;
      if (!trigger) {
        return [];
      }
      return trigger.scanEvents || [trigger];
    }

    scanForm.addEventListener("htmx:afterRequest", function (event) {
      if (event.detail.elt === scanForm) {
        pending = Math.max(0, pending - scansOf(event).length);
      }
    });

    last.addEventListener("htmx:beforeSwap", function (event) {
      if (event.detail.target === last && SHOWN_STATUSES.indexOf(event.detail.xhr.status) !== -1) {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
      }
    });

    last.addEventListener("htmx:afterSwap", function (event) {
      if (event.detail.target !== last) {
        return;
      }
      var scans = scansOf(event);
      last.querySelectorAll("[data-code]").forEach(function (verdict, index) {
        file(verdict);
        var scan = scans[index];
        if (timings && scan && typeof scan.redeemEnterAt === "number") {
          timings.push({
            code: verdict.dataset.code,
            ms: Math.round((performance.now() - scan.redeemEnterAt) * 10) / 10,
          });
        }
      });
    });

    basket.addEventListener("click", function (event) {
      var button = event.target.closest("[data-basket-remove]");
      if (!button) {
        return;
      }
      button.closest("[data-code]").remove();
      update(true);
      input.focus({ preventScroll: true });
    });

    redeemForm.addEventListener("submit", function (event) {
      if (pending > 0) {
        // A scanned cheque is still being checked: redeeming now would leave it out.
        event.preventDefault();
        say(root.dataset.wait);
        return;
      }
      // Disabled after the browser has read the form: a second click sends nothing.
      window.setTimeout(function () {
        submit.disabled = true;
        submit.textContent = root.dataset.submitting;
      }, 0);
    });

    // Services offered at the chosen site only; the only one is picked for the agent.
    function filterServices() {
      if (!site || !service) {
        return;
      }
      var offered = [];
      Array.prototype.forEach.call(service.options, function (option) {
        var sites = option.dataset.sites;
        var shown = !option.value || !site.value || !sites || sites.split(" ").indexOf(site.value) !== -1;
        option.hidden = !shown;
        option.disabled = !shown;
        if (shown && option.value) {
          offered.push(option);
        }
      });
      var current = service.selectedOptions[0];
      if (current && current.disabled) {
        service.value = "";
      }
      if (offered.length === 1 && !service.value) {
        service.value = offered[0].value;
      }
    }
    if (site) {
      site.addEventListener("change", filterServices);
      filterServices();
    }

    // Back from the receipt, the page may come from the browser's cache: recount it.
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        pending = 0;
        update(false);
      }
    });
    update(false);
  }

  function init() {
    document.querySelectorAll("[data-redeem-counter]").forEach(attach);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
