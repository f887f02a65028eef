// Staff admin: what Flask-Admin did with inline handlers, which our Content-Security-Policy forbids.
(function () {
  "use strict";
  // "Add Filter" items are links only for Flask-Admin's filters.js; following them must not scroll the page.
  document.addEventListener("click", function (event) {
    if (!event.target.closest) { return; }
    if (event.target.closest(".field-filters a.filter")) {
      event.preventDefault();
    }
    // "With selected" actions (e.g. Reprocess): Flask-Admin's inline onclick, as a delegated handler.
    var action = event.target.closest("a[data-model-action]");
    if (action && window.modelActions) {
      event.preventDefault();
      window.modelActions.execute(action.getAttribute("data-model-action"));
    }
  });
}());
