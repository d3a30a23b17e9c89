// Progressive enhancement only: every page works without it.
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (ev) {
    if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
  });
});
document.querySelectorAll("select[data-nav]").forEach(function (sel) {
  sel.addEventListener("change", function () {
    window.location = "/t/" + encodeURIComponent(sel.value) + "/numbers";
  });
});
