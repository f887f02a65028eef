// Staff admin: what Flask-Admin did with inline handlers, which our Content-Security-Policy forbids.
(function () {
  "use strict";
  // "Add Filter" items are links only for Flask-Admin's filters.js; following them must not scroll the page.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest(".field-filters a.filter")) {
      event.preventDefault();
    }
  });
}());
