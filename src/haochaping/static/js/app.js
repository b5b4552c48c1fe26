/* 好差评: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");

  var FONT_COOKIE = "hcp_font";
  var FONT_CLASSES = { normal: "font-normal", large: "font-large", xlarge: "font-xlarge" };

  /* Large-font mode (适老化): switch at once and remember it for a year. */
  function setFont(size) {
    if (!FONT_CLASSES[size]) return;
    Object.keys(FONT_CLASSES).forEach(function (key) {
      root.classList.remove(FONT_CLASSES[key]);
    });
    root.classList.add(FONT_CLASSES[size]);
    document.cookie = FONT_COOKIE + "=" + size + "; path=/; max-age=31536000; SameSite=Lax";
    document.querySelectorAll("a[data-font]").forEach(function (link) {
      if (link.getAttribute("data-font") === size) {
        link.setAttribute("aria-current", "true");
      } else {
        link.removeAttribute("aria-current");
      }
    });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-font]");
    if (!link) return;
    event.preventDefault();
    setFont(link.getAttribute("data-font"));
  });

  /* The rating form: show only the reasons of the chosen level; hidden ones are disabled
     so that they are never submitted. Without JavaScript all groups show, by level. */
  function initRatingForm(form) {
    var badLevels = (form.getAttribute("data-bad-levels") || "").split(",");
    var groups = form.querySelectorAll(".reason-group");
    var badHint = form.querySelector("#bad-hint");

    function update() {
      var checked = form.querySelector('input[name="level"]:checked');
      var level = checked ? checked.value : null;
      groups.forEach(function (group) {
        var show = group.getAttribute("data-level") === level;
        group.hidden = !show;
        group.disabled = !show;
        if (!show) {
          group.querySelectorAll("input").forEach(function (box) { box.checked = false; });
        }
      });
      if (badHint) badHint.hidden = !(level && badLevels.indexOf(level) !== -1);
    }

    form.querySelectorAll('input[name="level"]').forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.rate-form").forEach(initRatingForm);
    var error = document.getElementById("form-error");
    if (error) error.focus();
  });
})();
