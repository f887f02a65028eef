(function () {
  var form = document.getElementById("payment-form");
  var card = document.getElementById("card-fields");
  if (!form || !card) { return; }
  function update() {
    var chosen = form.querySelector("input[name=method]:checked");
    card.hidden = chosen !== null && chosen.value !== "card";
  }
  form.addEventListener("change", update);
  // Another shipping option re-totals the page at once (without scripts, the "Update total" button does it).
  var updateTotal = document.getElementById("update-total");
  form.addEventListener("change", function (event) {
    if (updateTotal && event.target && event.target.name === "shipping_rate") { updateTotal.click(); }
  });
  update();
  var number = document.getElementById("card_number");
  if (number) {
    number.addEventListener("input", function () {
      var caret = number.selectionStart || 0;
      var before = number.value.slice(0, caret).replace(/\D/g, "").length;
      var digits = number.value.replace(/\D/g, "").slice(0, 19);
      var spaced = digits.replace(/(\d{4})(?=\d)/g, "$1 ");
      number.value = spaced;
      var pos = 0, seen = 0;
      while (pos < spaced.length && seen < before) { if (/\d/.test(spaced[pos])) { seen += 1; } pos += 1; }
      number.setSelectionRange(pos, pos);
    });
  }
})();
