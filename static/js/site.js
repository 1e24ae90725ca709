/* Leadsite: copy buttons and keyboard shortcuts. No framework; the pages work without it. */
(function () {
  "use strict";

  var live = document.getElementById("live-status");

  function announce(text) {
    if (!live) { return; }
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  // Fallback for plain HTTP, where the Clipboard API is refused: a selected
  // off-screen textarea and the (older) copy command.
  function copyWithSelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var done = false;
    try { done = document.execCommand("copy"); } catch (error) { done = false; }
    document.body.removeChild(area);
    return done;
  }

  function copy(button) {
    var text = button.getAttribute("data-copy") || "";
    var what = button.getAttribute("data-copy-what") || "text";
    function ok() {
      button.setAttribute("data-copied", "true");
      announce("Copied the " + what + ".");
      window.setTimeout(function () { button.removeAttribute("data-copied"); }, 2000);
    }
    function fallback() {
      if (copyWithSelection(text)) { ok(); } else { announce("Could not copy the " + what + "."); }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(ok, fallback);
    } else {
      fallback();
    }
  }

  document.querySelectorAll("[data-js-only]").forEach(function (element) {
    element.hidden = false;
  });
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () { copy(button); });
  });

  var dialog = document.getElementById("shortcuts");

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var target;
    switch (event.key) {
      case "/":
        target = document.querySelector(".site-header input[name=q]");
        if (target) { event.preventDefault(); target.focus(); }
        break;
      case "e":
        target = document.querySelector("[data-shortcut=email]");
        if (target) { event.preventDefault(); target.click(); }
        break;
      case "c":
        target = document.querySelector("[data-shortcut=copy-id]");
        if (target) { event.preventDefault(); copy(target); }
        break;
      case "r":
        target = document.querySelector("form[data-shortcut=refresh]");
        if (target) { event.preventDefault(); target.requestSubmit(); }
        break;
      case "?":
        if (dialog && typeof dialog.showModal === "function") {
          event.preventDefault();
          if (dialog.open) { dialog.close(); } else { dialog.showModal(); }
        }
        break;
      default:
        break;
    }
  });
})();
