// Progressive enhancement for the shop page: steppers, a running total, and a Buy button that
// is disabled while nothing is chosen and again once pressed (the server also dedupes submits).
// The order page's "Print receipt" button (no inline handlers: the CSP forbids them).
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
}());

(function () {
  "use strict";
  var form = document.getElementById("buy-form");
  if (!form) { return; }
  var button = document.getElementById("buy-button");
  var totalEl = document.getElementById("order-total");
  var locale = form.getAttribute("data-locale") || "en-US";
  // The page's words in its language: the template puts them on the form (data-msg-*), English as fallback.
  function text(key, fallback) { return form.getAttribute("data-msg-" + key) || fallback; }
  var mixNote = document.getElementById("currency-mix");
  // Amounts are in the currency's minor unit (cents for USD, yen for JPY): the page says how many digits,
  // so the total agrees with the server's Babel formatting and with what Stripe charges.
  function format(minor, currency, digits) {
    var money = new Intl.NumberFormat(locale, {
      style: "currency", currency: currency.toUpperCase(),
      minimumFractionDigits: digits, maximumFractionDigits: digits
    });
    return money.format(minor / Math.pow(10, digits));
  }
  var inputs = Array.prototype.slice.call(form.querySelectorAll(".qty-input"));

  function productName(input) {
    return input.closest(".product-card").getAttribute("data-name");
  }

  function quantity(input) {
    var n = parseInt(input.value, 10);
    return isNaN(n) || n < 0 ? 0 : n;
  }

  // Beside each field as it is typed: a fractional or over-the-maximum quantity (the server checks too).
  function check(input) {
    var max = parseInt(input.getAttribute("max"), 10);
    var raw = input.value.trim();
    var message = "";
    if (raw !== "" && !/^\d+$/.test(raw)) {
      message = text("whole", "Please enter a whole number of items.");
    } else if (raw !== "" && !isNaN(max) && parseInt(raw, 10) > max) {
      message = text("max", "You can buy at most {max} of {name} in one order.")
        .replace("{max}", String(max)).replace("{name}", productName(input));
    }
    var id = input.id + "-live-error";
    var note = document.getElementById(id);
    if (!note) {
      note = document.createElement("p");
      note.id = id;
      note.className = "qty-live-error";
      note.setAttribute("aria-live", "polite");
      input.closest(".product-card").appendChild(note);
    }
    note.textContent = message;
    if (message) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    var plus = input.parentElement.querySelector(".stepper-plus");
    if (plus) {
      var atMax = !isNaN(max) && quantity(input) >= max;
      plus.disabled = atMax;
      plus.setAttribute("aria-disabled", atMax ? "true" : "false");
    }
    return message === "";
  }

  function update() {
    var totals = {};
    var currencies = [];
    var count = 0;
    var valid = true;
    inputs.forEach(function (input) {
      if (!input.disabled && !check(input)) { valid = false; }
      var card = input.closest(".product-card");
      var q = quantity(input);
      if (q === 0) { return; }
      var currency = card.getAttribute("data-currency");
      if (!(currency in totals)) {
        totals[currency] = { minor: 0, digits: parseInt(card.getAttribute("data-minor-units"), 10) };
        currencies.push(currency);
      }
      count += q;
      totals[currency].minor += q * parseInt(card.getAttribute("data-price-cents"), 10);
    });
    var mixed = currencies.length > 1;
    if (totalEl) {
      // While any field is invalid the total would be a guess (999999 x $19.99): show none until it is fixed.
      totalEl.textContent = valid && currencies.length === 1 ?
        format(totals[currencies[0]].minor, currencies[0], totals[currencies[0]].digits) : "\u2014";
    }
    if (mixNote) { mixNote.hidden = !mixed; }
    if (button && !form.classList.contains("submitting")) { button.disabled = count === 0 || !valid || mixed; }
  }

  inputs.forEach(function (input) {
    if (input.disabled) { return; }
    var wrap = input.parentElement;
    var name = productName(input);
    function step(delta, label) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = delta < 0 ? "stepper stepper-minus" : "stepper stepper-plus";
      b.textContent = delta < 0 ? "\u2212" : "+";
      b.setAttribute("aria-label", label + " " + name);
      b.addEventListener("click", function () {
        var max = parseInt(input.getAttribute("max"), 10);
        input.value = String(Math.min(max, Math.max(0, quantity(input) + delta)));
        update();
      });
      return b;
    }
    var row = document.createElement("div");
    row.className = "stepper-row";
    wrap.appendChild(row);
    row.appendChild(step(-1, text("decrease", "Decrease quantity of")));
    row.appendChild(input);
    row.appendChild(step(1, text("increase", "Increase quantity of")));
    input.addEventListener("input", update);
    input.addEventListener("change", update);
  });

  form.addEventListener("submit", function (event) {
    if (form.classList.contains("submitting")) { event.preventDefault(); return; }
    form.classList.add("submitting");
    if (button) {
      button.disabled = true;
      button.textContent = text("redirecting", "Redirecting to payment\u2026");
    }
  });
  // Coming back with the browser's Back button must re-enable the form.
  window.addEventListener("pageshow", function () { form.classList.remove("submitting"); update(); });
  update();
}());
