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
  var currency = (form.getAttribute("data-currency") || "usd").toUpperCase();
  var money = new Intl.NumberFormat("en-US", { style: "currency", currency: currency });
  var inputs = Array.prototype.slice.call(form.querySelectorAll(".qty-input"));

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
      message = "Please enter a whole number of items.";
    } else if (raw !== "" && !isNaN(max) && parseInt(raw, 10) > max) {
      message = "You can buy at most " + max + " at a time.";
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
    var cents = 0;
    var count = 0;
    var valid = true;
    inputs.forEach(function (input) {
      if (!input.disabled && !check(input)) { valid = false; }
      var card = input.closest(".product-card");
      var q = quantity(input);
      count += q;
      cents += q * parseInt(card.getAttribute("data-price-cents"), 10);
    });
    if (totalEl) { totalEl.textContent = money.format(cents / 100); }
    if (button && !form.classList.contains("submitting")) { button.disabled = count === 0 || !valid; }
  }

  inputs.forEach(function (input) {
    if (input.disabled) { return; }
    var wrap = input.parentElement;
    var name = input.closest(".product-card").querySelector(".product-name").textContent;
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
    row.appendChild(step(-1, "Decrease quantity of"));
    row.appendChild(input);
    row.appendChild(step(1, "Increase quantity of"));
    input.addEventListener("input", update);
    input.addEventListener("change", update);
  });

  form.addEventListener("submit", function (event) {
    if (form.classList.contains("submitting")) { event.preventDefault(); return; }
    form.classList.add("submitting");
    if (button) {
      button.disabled = true;
      button.textContent = "Redirecting to payment\u2026";
    }
  });
  // Coming back with the browser's Back button must re-enable the form.
  window.addEventListener("pageshow", function () { form.classList.remove("submitting"); update(); });
  update();
}());
