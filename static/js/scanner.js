/* loyalpass staff scanner: find a card by camera or by typing, then record purchases and
 * redemptions through the till API (/api/v1) with this page's session and CSRF token.
 *
 * Money is integer minor units everywhere: typed amounts are parsed as strings ("123,45" ->
 * 12345), never through floating point. Every write carries an Idempotency-Key made once per
 * submission and reused only when that same submission is retried after an uncertain outcome
 * (no answer, or a 5xx), so a retry can never record anything twice.
 */
(function () {
  "use strict";

  var root = document.getElementById("scanner");
  if (!root) {
    return;
  }
  var meta = document.querySelector('meta[name="csrf-token"]');
  var config = {
    api: root.dataset.api || "/api/v1",
    currency: root.dataset.currency || "RUB",
    digits: parseInt(root.dataset.minorDigits || "2", 10),
    pointsLabel: root.dataset.pointsLabel || "Points",
    jsqr: root.dataset.jsqr,
    loginUrl: root.dataset.loginUrl || "/store/login",
    csrf: meta ? meta.getAttribute("content") : "",
  };
  var REQUEST_TIMEOUT_MS = 20000;

  // The page's language: the server puts the translation of every message below (English
  // text -> the visitor's language) in a JSON block; {name} marks a value put in.
  var TEXT = {};
  try {
    TEXT = JSON.parse((document.getElementById("scanner-text") || {}).textContent || "{}");
  } catch (ignored) {
    TEXT = {};
  }
  function t(message, values) {
    var text = TEXT[message] || message;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }

  function $(id) {
    return document.getElementById(id);
  }

  var el = {
    scanStart: $("scan-start"),
    scanStop: $("scan-stop"),
    camera: $("camera"),
    video: $("camera-video"),
    cameraStatus: $("camera-status"),
    lookupForm: $("lookup-form"),
    code: $("code"),
    lookupError: $("lookup-error"),
    card: $("card"),
    memberName: $("member-name"),
    typedNote: $("typed-note"),
    scanNote: $("scan-note"),
    cardNumber: $("card-number"),
    cardBalance: $("card-balance"),
    cardTier: $("card-tier"),
    cardDiscount: $("card-discount"),
    rewardsNone: $("rewards-none"),
    rewardsList: $("rewards-list"),
    rewardError: $("reward-error"),
    rewardResult: $("reward-result"),
    operations: $("operations"),
    purchaseForm: $("purchase-form"),
    purchaseAmount: $("purchase-amount"),
    purchaseReceipt: $("purchase-receipt"),
    purchaseError: $("purchase-error"),
    purchaseResult: $("purchase-result"),
    pointsForm: $("points-form"),
    pointsReceipt: $("points-receipt"),
    pointsError: $("points-error"),
    pointsResult: $("points-result"),
    nextCustomer: $("next-customer"),
  };

  // The card being served: the text that found it (a scanned payload keeps its proof of scan
  // for the writes) and the API's latest view of it.
  var current = { code: null, card: null };

  // ------------------------------------------------------------------ money and numbers

  /* "123,45" / "123.45" / "1 234,5" -> 12345 / 12345 / 123450 minor units; null if not money. */
  function parseMoney(text, digits) {
    var compact = String(text).replace(/[\s\u00a0\u202f']/g, "");
    var match = /^(\d{1,15})(?:[.,](\d*))?$/.exec(compact);
    if (!match) {
      return null;
    }
    var fraction = match[2] || "";
    if (fraction.length > digits) {
      return null;
    }
    while (fraction.length < digits) {
      fraction += "0";
    }
    var minor = Number((match[1] + fraction).replace(/^0+(?=\d)/, ""));
    return Number.isSafeInteger(minor) ? minor : null;
  }

  function group(digitsText) {
    return digitsText.replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
  }

  /* 12345 -> "123.45 RUB", by string operations so no rounding can creep in. */
  function formatMoney(minor) {
    var negative = minor < 0;
    var text = String(Math.abs(minor));
    var out;
    if (config.digits === 0) {
      out = group(text);
    } else {
      while (text.length <= config.digits) {
        text = "0" + text;
      }
      var cut = text.length - config.digits;
      out = group(text.slice(0, cut)) + "." + text.slice(cut);
    }
    return (negative ? "\u2212" : "") + out + "\u00a0" + config.currency;
  }

  /* Basis points -> "3 %", "2.5 %". */
  function formatRate(bp) {
    var whole = Math.floor(bp / 100);
    var rest = bp % 100;
    var text = rest ? (whole + "." + String(rest).padStart(2, "0")).replace(/0+$/, "") : whole;
    return text + "\u00a0%";
  }

  function formatPoints(points) {
    return group(String(points)) + "\u00a0" + config.pointsLabel.toLowerCase();
  }

  function formatCardNumber(number) {
    return number.replace(/(\d{4})(?=\d)/g, "$1\u00a0");
  }

  // ------------------------------------------------------------------ messages

  function clearMessage(region) {
    if (region) {
      region.textContent = "";
    }
  }

  /* Text (and an optional link) in a role="alert" region: assistive technology reads it out. */
  function showError(region, text, link) {
    region.textContent = "";
    var p = document.createElement("p");
    p.textContent = text;
    if (link) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      p.appendChild(document.createTextNode(" "));
      p.appendChild(a);
    }
    region.appendChild(p);
  }

  function showResult(region, lines) {
    region.textContent = "";
    var list = document.createElement("ul");
    lines.forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line;
      list.appendChild(item);
    });
    region.appendChild(list);
  }

  // ------------------------------------------------------------------ talking to the API

  function ApiError(status, problem) {
    this.status = status;
    this.problem = problem || {};
    this.message = (problem && problem.detail) || t("The server answered {status}.", { status: status });
  }

  function NetworkError(message) {
    this.message = message;
  }

  function request(method, path, body, idempotencyKey) {
    var headers = { Accept: "application/json" };
    var init = { method: method, credentials: "same-origin", headers: headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = config.csrf;
      headers["Idempotency-Key"] = idempotencyKey;
      init.body = JSON.stringify(body);
    }
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = null;
    if (controller) {
      init.signal = controller.signal;
      timer = setTimeout(function () {
        controller.abort();
      }, REQUEST_TIMEOUT_MS);
    }
    return fetch(config.api + path, init)
      .catch(function () {
        throw new NetworkError(t("No answer from the server (network problem or timeout)."));
      })
      .then(function (response) {
        return response.text().then(
          function (text) {
            var data = null;
            try {
              data = text ? JSON.parse(text) : null;
            } catch (ignored) {
              data = null;
            }
            if (!response.ok) {
              throw new ApiError(response.status, data);
            }
            return { data: data, replayed: response.headers.get("Idempotent-Replayed") === "true" };
          },
          function () {
            throw new NetworkError(t("The answer from the server was cut off."));
          }
        );
      })
      .finally(function () {
        if (timer) {
          clearTimeout(timer);
        }
      });
  }

  /* What to tell the person about a failed request. */
  function explain(region, error, uncertainWrite) {
    if (error instanceof NetworkError || (error instanceof ApiError && error.status >= 500)) {
      var text = error.message;
      if (uncertainWrite) {
        text +=
          " " +
          t(
            "It may or may not have been recorded. Press the same button again to retry: a retry of the same entry is never recorded twice."
          );
      }
      showError(region, text);
    } else if (error instanceof ApiError && error.status === 401) {
      showError(region, error.message, { href: config.loginUrl, text: t("Sign in again") });
    } else if (error instanceof ApiError && error.problem.code === "csrf_failed") {
      showError(region, t("This page has expired. Reload it, then try again."), {
        href: window.location.pathname,
        text: t("Reload the page"),
      });
    } else if (error instanceof ApiError) {
      showError(region, error.message);
    } else {
      showError(region, t("Something went wrong in this page: {error}", { error: error && error.message }));
    }
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; plain-http development falls back to getRandomValues.
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map
      .call(bytes, function (b) {
        return b.toString(16).padStart(2, "0");
      })
      .join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
      .join("-");
  }

  /* One write operation (one form or button group): at most one request in flight, and an
   * Idempotency-Key kept for the same body while its outcome is unknown. */
  function Operation(path) {
    this.path = path;
    this.busy = false;
    // {what, body, key} of the last submission while its outcome is unknown. ``what`` names the
    // card by its number, so the same entry retried after the card was found again another way
    // (scanned instead of typed) is still recognised, and then the original body is resent.
    this.pending = null;
  }

  Operation.prototype.submit = function (body, controls) {
    var self = this;
    if (self.busy) {
      return Promise.reject(new Error("busy"));
    }
    var what = JSON.stringify(Object.assign({}, body, { card: current.card.number }));
    if (self.pending && self.pending.what === what) {
      body = self.pending.body; // a retry: same key, same bytes
    } else {
      self.pending = { what: what, body: body, key: newKey() };
    }
    var key = self.pending.key;
    self.busy = true;
    setBusy(controls, true);
    return request("POST", self.path, body, key)
      .then(
        function (result) {
          self.pending = null;
          return result;
        },
        function (error) {
          var uncertain =
            error instanceof NetworkError || (error instanceof ApiError && error.status >= 500);
          if (!uncertain) {
            self.pending = null; // a definite answer: the next press is a new submission
          }
          throw error;
        }
      )
      .finally(function () {
        self.busy = false;
        setBusy(controls, false);
      });
  };

  function setBusy(controls, busy) {
    controls.forEach(function (control) {
      control.disabled = busy;
      if (busy) {
        control.setAttribute("aria-busy", "true");
      } else {
        control.removeAttribute("aria-busy");
      }
    });
  }

  var operations = {
    purchase: new Operation("/purchases"),
    points: new Operation("/redemptions"),
    reward: new Operation("/redemptions"),
  };

  // ------------------------------------------------------------------ the card

  function renderCard(card) {
    current.card = card;
    el.memberName.textContent = card.member_name;
    el.cardNumber.textContent = formatCardNumber(card.number);
    el.cardBalance.textContent = group(String(card.balance));
    el.cardTier.textContent = card.tier ? card.tier.name : "\u2014";
    el.cardDiscount.textContent = card.discount_rate ? formatRate(card.discount_rate) : t("none");
    el.typedNote.hidden = card.lookup !== "typed";
    el.scanNote.hidden = card.lookup !== "scan";
    renderRewards(card);
    el.card.hidden = false;
    el.operations.hidden = false;
  }

  function renderRewards(card) {
    el.rewardsList.textContent = "";
    el.rewardsNone.hidden = card.rewards_available.length > 0;
    card.rewards_available.forEach(function (reward) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button button-reward";
      button.dataset.reward = reward.key;
      button.dataset.name = reward.name;
      button.textContent = t("Give {reward}", { reward: reward.name }) + " \u00b7 " + formatPoints(reward.cost);
      if (!reward.in_stock) {
        button.disabled = true;
        button.textContent += " " + t("(out of stock)");
      }
      item.appendChild(button);
      el.rewardsList.appendChild(item);
    });
  }

  function rewardButtons() {
    return Array.prototype.slice.call(el.rewardsList.querySelectorAll("button"));
  }

  function lookUp(code) {
    clearMessage(el.lookupError);
    var text = code.trim();
    if (!text) {
      showError(el.lookupError, t("Type the card number, or scan the card."));
      el.code.setAttribute("aria-invalid", "true");
      el.code.focus();
      return Promise.resolve();
    }
    el.code.removeAttribute("aria-invalid");
    var button = el.lookupForm.querySelector('button[type="submit"]');
    setBusy([button], true);
    return request("GET", "/cards/" + encodeURIComponent(text))
      .then(function (result) {
        // Another card starts afresh; the same card again (say, to check its balance) keeps
        // what was typed and any retry that is still owed.
        if (!current.card || current.card.number !== result.data.number) {
          resetOperations();
        }
        current.code = text;
        renderCard(result.data);
        el.card.scrollIntoView({ block: "start" });
      })
      .catch(function (error) {
        explain(el.lookupError, error, false);
      })
      .finally(function () {
        setBusy([button], false);
      });
  }

  function resetOperations() {
    [el.purchaseError, el.purchaseResult, el.pointsError, el.pointsResult].forEach(clearMessage);
    [el.rewardError, el.rewardResult].forEach(clearMessage);
    el.purchaseAmount.value = "";
    el.purchaseReceipt.value = "";
    if (el.pointsReceipt) {
      el.pointsReceipt.value = "";
    }
    operations.purchase.pending = null;
    operations.points.pending = null;
    operations.reward.pending = null;
  }

  function nextCustomer() {
    stopCamera();
    resetOperations();
    current.code = null;
    current.card = null;
    el.card.hidden = true;
    el.operations.hidden = true;
    el.code.value = "";
    clearMessage(el.lookupError);
    clearMessage(el.cameraStatus);
    el.scanStart.focus();
    window.scrollTo(0, 0);
  }

  // ------------------------------------------------------------------ writes

  function amountField(input, errorRegion, what) {
    var minor = parseMoney(input.value, config.digits);
    if (minor === null || minor <= 0) {
      input.setAttribute("aria-invalid", "true");
      var example = config.digits === 0 ? "1234" : config.digits === 3 ? "123,456" : "123,45";
      showError(errorRegion, t("Type the {what} as a number, e.g. {example}.", { what: t(what), example: example }));
      input.focus();
      return null;
    }
    input.removeAttribute("aria-invalid");
    return minor;
  }

  function onPurchase(event) {
    event.preventDefault();
    if (!current.code || operations.purchase.busy) {
      return;
    }
    clearMessage(el.purchaseError);
    var amount = amountField(el.purchaseAmount, el.purchaseError, "amount");
    if (amount === null) {
      return;
    }
    var body = { card: current.code, amount: amount, currency: config.currency };
    var receipt = el.purchaseReceipt.value.trim();
    if (receipt) {
      body.receipt = receipt;
    }
    var button = el.purchaseForm.querySelector('button[type="submit"]');
    clearMessage(el.purchaseResult);
    operations.purchase
      .submit(body, [button])
      .then(function (result) {
        var out = result.data;
        var lines = [
          t(result.replayed ? "Already recorded: {amount}" : "Recorded: {amount}", { amount: formatMoney(out.amount) }),
        ];
        lines.push(
          out.discount
            ? t("Discount {rate}: \u2212{amount}", { rate: formatRate(out.discount_rate), amount: formatMoney(out.discount) })
            : t("No discount")
        );
        lines.push(t("Customer pays {amount}", { amount: formatMoney(out.paid) }));
        lines.push(t("Earned +{points}", { points: formatPoints(out.points_earned) }));
        if (out.cashback_points) {
          lines.push(t("Cashback +{points}", { points: formatPoints(out.cashback_points) }));
        }
        lines.push(t("New balance {points}", { points: formatPoints(out.card.balance) }));
        if (out.tier_changed) {
          lines.push(t("Tier changed: now {tier}", { tier: out.card.tier ? out.card.tier.name : t("no tier") }));
        }
        showResult(el.purchaseResult, lines);
        el.purchaseAmount.value = "";
        el.purchaseReceipt.value = "";
        renderCard(out.card);
      })
      .catch(function (error) {
        if (error.message !== "busy") {
          explain(el.purchaseError, error, true);
        }
      });
  }

  function onPayWithPoints(event) {
    event.preventDefault();
    if (!current.code || operations.points.busy) {
      return;
    }
    clearMessage(el.pointsError);
    var receiptAmount = amountField(el.pointsReceipt, el.pointsError, "receipt amount");
    if (receiptAmount === null) {
      return;
    }
    var button = el.pointsForm.querySelector('button[type="submit"]');
    clearMessage(el.pointsResult);
    operations.points
      .submit({ card: current.code, receipt_amount: receiptAmount }, [button])
      .then(function (result) {
        var out = result.data;
        showResult(el.pointsResult, [
          t(result.replayed ? "Already paid: {points}" : "Paid with {points}", { points: formatPoints(out.points) }) +
            " = " +
            formatMoney(out.money),
          t("Customer pays {amount} of {total}", { amount: formatMoney(receiptAmount - out.money), total: formatMoney(receiptAmount) }),
          t("New balance {points}", { points: formatPoints(out.card.balance) }),
        ]);
        el.pointsReceipt.value = "";
        renderCard(out.card);
      })
      .catch(function (error) {
        if (error.message !== "busy") {
          explain(el.pointsError, error, true);
        }
      });
  }

  function onReward(event) {
    var button = event.target.closest("button[data-reward]");
    if (!button || !current.code || operations.reward.busy) {
      return;
    }
    clearMessage(el.rewardError);
    clearMessage(el.rewardResult);
    operations.reward
      .submit({ card: current.code, reward: button.dataset.reward }, rewardButtons())
      .then(function (result) {
        var out = result.data;
        showResult(el.rewardResult, [
          t(result.replayed ? "Already given: {reward}" : "Give the customer: {reward}", { reward: button.dataset.name }),
          t("Spent {points}; new balance {balance}", { points: formatPoints(out.points), balance: formatPoints(out.card.balance) }),
        ]);
        renderCard(out.card);
      })
      .catch(function (error) {
        if (error.message !== "busy") {
          explain(el.rewardError, error, true);
        }
      });
  }

  // ------------------------------------------------------------------ camera

  var camera = { stream: null, running: false, decode: null, timer: null };

  function say(text) {
    el.cameraStatus.textContent = text;
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      if (window.jsQR) {
        resolve();
        return;
      }
      var script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = function () {
        resolve();
      };
      script.onerror = function () {
        reject(new Error("could not load the QR decoder"));
      };
      document.head.appendChild(script);
    });
  }

  /* A function(video) -> Promise<text|null>: the built-in BarcodeDetector when it reads QR
   * codes here, else jsQR (loaded only then) on a downscaled frame. */
  function makeDecoder() {
    var native = Promise.resolve(null);
    if ("BarcodeDetector" in window) {
      native = Promise.resolve()
        .then(function () {
          return window.BarcodeDetector.getSupportedFormats();
        })
        .then(function (formats) {
          if (formats.indexOf("qr_code") < 0) {
            return null;
          }
          var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
          return function (video) {
            return detector.detect(video).then(function (codes) {
              return codes.length ? codes[0].rawValue : null;
            });
          };
        })
        .catch(function () {
          return null;
        });
    }
    return native.then(function (decoder) {
      if (decoder) {
        return decoder;
      }
      return loadScript(config.jsqr).then(function () {
        var canvas = document.createElement("canvas");
        var context = canvas.getContext("2d", { willReadFrequently: true });
        return function (video) {
          var width = video.videoWidth;
          var height = video.videoHeight;
          if (!width || !height) {
            return Promise.resolve(null);
          }
          var scale = Math.min(1, 720 / Math.max(width, height));
          canvas.width = Math.round(width * scale);
          canvas.height = Math.round(height * scale);
          context.drawImage(video, 0, 0, canvas.width, canvas.height);
          var image = context.getImageData(0, 0, canvas.width, canvas.height);
          var found = window.jsQR(image.data, image.width, image.height, {
            inversionAttempts: "attemptBoth",
          });
          return Promise.resolve(found && found.data ? found.data : null);
        };
      });
    });
  }

  function cameraProblem(error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return t("Camera access was refused. Allow the camera for this site in the browser settings, or type the card number below.");
    }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
      return t("No camera was found on this device. Type the card number below.");
    }
    if (name === "NotReadableError" || name === "AbortError") {
      return t("The camera is busy in another app. Close it and try again, or type the card number below.");
    }
    return t("The camera could not start ({error}). Type the card number below.", { error: error && error.message ? error.message : name || "unknown error" });
  }

  function startCamera() {
    clearMessage(el.lookupError);
    if (camera.running) {
      return;
    }
    if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== "function") {
      say(
        window.isSecureContext
          ? t("This browser cannot use the camera. Type the card number below.")
          : t("The camera works only over HTTPS. Type the card number below.")
      );
      el.code.focus();
      return;
    }
    camera.running = true;
    el.scanStart.disabled = true;
    el.camera.hidden = false; // its Stop button cancels a camera that is slow to start
    say(t("Starting the camera\u2026"));
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (stream) {
        if (!camera.running) {
          stream.getTracks().forEach(function (track) {
            track.stop();
          });
          return null;
        }
        camera.stream = stream;
        el.video.srcObject = stream;
        return el.video.play().then(makeDecoder);
      })
      .then(function (decode) {
        if (!decode || !camera.running) {
          return;
        }
        camera.decode = decode;
        say(t("Point the camera at the QR code on the customer's card."));
        scanFrame();
      })
      .catch(function (error) {
        stopCamera();
        say(cameraProblem(error));
        el.code.focus();
      });
  }

  function scanFrame() {
    if (!camera.running || !camera.decode) {
      return;
    }
    camera
      .decode(el.video)
      .then(function (text) {
        if (!camera.running) {
          return;
        }
        if (text) {
          stopCamera();
          say(t("Card scanned."));
          if (navigator.vibrate) {
            navigator.vibrate(80);
          }
          el.code.value = text;
          lookUp(text);
        } else {
          camera.timer = setTimeout(scanFrame, 120);
        }
      })
      .catch(function () {
        camera.timer = setTimeout(scanFrame, 250);
      });
  }

  function stopCamera() {
    camera.running = false;
    camera.decode = null;
    if (camera.timer) {
      clearTimeout(camera.timer);
      camera.timer = null;
    }
    if (camera.stream) {
      camera.stream.getTracks().forEach(function (track) {
        track.stop();
      });
      camera.stream = null;
    }
    el.video.srcObject = null;
    el.camera.hidden = true;
    el.scanStart.disabled = false;
  }

  // ------------------------------------------------------------------ wiring

  el.scanStart.addEventListener("click", startCamera);
  el.scanStop.addEventListener("click", function () {
    stopCamera();
    say(t("Camera stopped."));
  });
  el.lookupForm.addEventListener("submit", function (event) {
    event.preventDefault();
    stopCamera();
    lookUp(el.code.value);
  });
  el.purchaseForm.addEventListener("submit", onPurchase);
  if (el.pointsForm) {
    el.pointsForm.addEventListener("submit", onPayWithPoints);
  }
  el.rewardsList.addEventListener("click", onReward);
  el.nextCustomer.addEventListener("click", nextCustomer);
  document.addEventListener("visibilitychange", function () {
    if (document.hidden && camera.running) {
      stopCamera();
      say(t("Camera stopped while the page was hidden."));
    }
  });

  // For tests in a browser console: the pure helpers.
  window.loyalpassScanner = { parseMoney: parseMoney, formatMoney: formatMoney };
})();
