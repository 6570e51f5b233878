/* The header's menu (details.nav-menu in templates/base.html) opens and closes by itself, without
   this file. With it, the menu also closes on Escape (focus goes back to its summary when it was
   inside) and on a click or focus anywhere outside it, as a menu is expected to. */
(function () {
  "use strict";

  function openMenus() {
    return Array.prototype.slice.call(document.querySelectorAll("details[data-nav-menu][open]"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    openMenus().forEach(function (menu) {
      var hadFocus = menu.contains(document.activeElement);
      menu.open = false;
      if (hadFocus) menu.querySelector("summary").focus();
    });
  });

  function closeOutside(event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  }

  document.addEventListener("click", closeOutside);
  document.addEventListener("focusin", closeOutside);
}());
