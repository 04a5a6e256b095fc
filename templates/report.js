(function () {
  "use strict";
  var steps = Array.prototype.slice.call(document.querySelectorAll("section.step"));
  var scopes = Array.prototype.slice.call(document.querySelectorAll("details.scope"));
  var leads = Array.prototype.slice.call(document.querySelectorAll(".lead"));
  var search = document.getElementById("search");
  var count = document.getElementById("match-count");

  function applyFilter() {
    var needle = search.value.trim().toLowerCase();
    var shown = 0;
    steps.forEach(function (step) {
      var hit = !needle || step.getAttribute("data-search").indexOf(needle) !== -1;
      step.classList.toggle("hidden", !hit);
      if (hit) { shown += 1; }
    });
    leads.forEach(function (lead) { lead.classList.toggle("hidden", needle !== ""); });
    scopes.slice().reverse().forEach(function (scope) {
      var visible = !needle || scope.querySelector("section.step:not(.hidden)") !== null;
      scope.classList.toggle("hidden", !visible);
      if (needle && visible) { scope.open = true; }
    });
    count.textContent = needle ? shown + " / " + steps.length : "";
  }
  search.addEventListener("input", applyFilter);

  function setAll(open) { scopes.forEach(function (scope) { scope.open = open; }); }
  document.getElementById("expand-all").addEventListener("click", function () { setAll(true); });
  document.getElementById("collapse-all").addEventListener("click", function () { setAll(false); });
  var explanations = Array.prototype.slice.call(document.querySelectorAll("details.explain"));
  document.getElementById("explanations").addEventListener("change", function (event) {
    explanations.forEach(function (explain) { explain.open = event.target.checked; });
  });

  var links = {};
  Array.prototype.forEach.call(document.querySelectorAll("#outline a"), function (link) {
    links[link.getAttribute("data-anchor")] = link;
  });
  var current = null;
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) { return; }
        var link = links[entry.target.id];
        if (!link) { return; }
        if (current) { current.classList.remove("current"); }
        current = link;
        link.classList.add("current");
        link.scrollIntoView({ block: "nearest" });
      });
    }, { rootMargin: "0px 0px -70% 0px" });
    scopes.forEach(function (scope) { if (links[scope.id]) { observer.observe(scope); } });
  }
})();
