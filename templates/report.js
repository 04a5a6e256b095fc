(function () {
  "use strict";
  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  var steps = all("details.step");
  var scopes = all("details.scope");
  var leads = all(".lead");
  var search = document.getElementById("search");
  var count = document.getElementById("match-count");
  var links = {};
  all("#outline a").forEach(function (link) { links[link.getAttribute("data-anchor")] = link; });

  /* Code and explanations that many steps share are kept once, in <template>s: a step gets its
     copies when it is first opened (and all of them before printing). */
  var explanations = document.getElementById("explanations");
  function fill(root) {
    all("[data-ref]", root).forEach(function (slot) {
      if (slot.childNodes.length) { return; }
      var source = document.getElementById(slot.getAttribute("data-ref"));
      if (source) { slot.appendChild(source.content.cloneNode(true)); }
      all("details.explain", slot).forEach(function (box) { box.open = explanations.checked; });
    });
  }
  steps.forEach(function (step) {
    if (step.open) { fill(step); }
    step.addEventListener("toggle", function () { if (step.open) { fill(step); } });
  });

  /* Search: steps by title, id, kind or shape (their one-line summary, and data-search for what
     it does not show); scopes and outline entries without a match hide. */
  var texts = steps.map(function (step) {
    return (step.querySelector("summary").textContent + " " + step.getAttribute("data-kind") + " " +
            (step.getAttribute("data-search") || "")).toLowerCase().replace(/×/g, "x");
  });
  function applyFilter() {
    var needle = search.value.trim().toLowerCase();
    var shown = 0;
    steps.forEach(function (step, index) {
      var hit = !needle || texts[index].indexOf(needle) !== -1;
      step.classList.toggle("hidden", !hit);
      if (hit) { shown += 1; }
    });
    leads.forEach(function (lead) { lead.classList.toggle("hidden", needle !== ""); });
    scopes.slice().reverse().forEach(function (scope) {
      var visible = !needle || scope.querySelector("details.step:not(.hidden)") !== null;
      scope.classList.toggle("hidden", !visible);
      if (needle && visible) { scope.open = true; }
      var link = links[scope.id];
      if (link) { link.parentNode.classList.toggle("hidden", !visible); }
    });
    count.textContent = needle ? count.getAttribute("data-template").replace("{shown}", shown)
      .replace("{total}", count.getAttribute("data-total")) : "";
  }
  search.addEventListener("input", applyFilter);

  /* Expand all opens every scope and step; collapse all folds the steps and the scopes inside
     blocks, and keeps stages and blocks open, so that the model's outline stays in view. */
  document.getElementById("expand-all").addEventListener("click", function () {
    scopes.forEach(function (scope) { scope.open = true; });
    steps.forEach(function (step) { step.open = true; fill(step); });
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    steps.forEach(function (step) { step.open = false; });
    scopes.forEach(function (scope) { scope.open = /level-[12]\b/.test(scope.className); });
  });
  explanations.addEventListener("change", function (event) {
    all("details.explain").forEach(function (explain) { explain.open = event.target.checked; });
  });

  /* Anchors land below the sticky toolbar, however many lines it wraps to. */
  var toolbar = document.getElementById("toolbar");
  function measureToolbar() {
    document.documentElement.style.setProperty("--toolbar-height", toolbar.offsetHeight + "px");
  }
  measureToolbar();
  window.addEventListener("resize", measureToolbar);

  /* A link to any step or scope (#layers.1.blocks.1.attn.softmax) opens what holds it, and it. */
  function reveal(id, smooth) {
    var target = id && document.getElementById(id);
    if (!target) { return; }
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
    fill(target);
    target.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" });
  }
  /* A hash typed or pasted by hand may not decode (#%): it then names nothing, and the page still starts. */
  function fromHash() {
    var name;
    try { name = decodeURIComponent(location.hash.slice(1)); } catch (error) { return; }
    reveal(name, false);
  }
  window.addEventListener("hashchange", fromHash);
  if (location.hash) { fromHash(); }

  /* The outline: a drawer on narrow screens; the entry of the scope in view is marked. */
  var toggle = document.getElementById("outline-toggle");
  function drawer(open) {
    document.body.classList.toggle("outline-open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }
  toggle.addEventListener("click", function () { drawer(!document.body.classList.contains("outline-open")); });
  all("#outline a").forEach(function (link) {
    link.addEventListener("click", function () { drawer(false); });
  });
  var current = null;
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        var link = entry.isIntersecting && links[entry.target.id];
        if (!link) { return; }
        if (current) { current.classList.remove("current"); }
        current = link;
        link.classList.add("current");
        link.scrollIntoView({ block: "nearest" });
      });
    }, { rootMargin: "0px 0px -70% 0px" });
    scopes.forEach(function (scope) { if (links[scope.id]) { observer.observe(scope); } });
  }

  /* Pictures open full size in a lightbox (click, Enter or Escape closes it). */
  var lightbox = document.getElementById("lightbox");
  var large = lightbox.querySelector("img");
  function closeLightbox() { lightbox.hidden = true; large.removeAttribute("src"); }
  all("figure.picture img").forEach(function (image) {
    image.tabIndex = 0;
    function open() { large.src = image.src; large.alt = image.alt; lightbox.hidden = false; }
    image.addEventListener("click", open);
    image.addEventListener("keydown", function (event) { if (event.key === "Enter") { open(); } });
  });
  lightbox.addEventListener("click", closeLightbox);

  /* Presentation: large type, high contrast, a block per screen. */
  var present = document.getElementById("present");
  present.addEventListener("click", function () {
    var on = document.body.classList.toggle("present");
    present.setAttribute("aria-pressed", on ? "true" : "false");
  });

  /* Keys: / searches, j and k move to the next or previous step, Escape closes what is open. */
  function visibleSteps() { return steps.filter(function (step) { return step.offsetParent !== null; }); }
  document.addEventListener("keydown", function (event) {
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
    if (event.key === "Escape") {
      closeLightbox();
      drawer(false);
      if (typing) { event.target.blur(); }
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "/") {
      event.preventDefault();
      search.focus();
    } else if (event.key === "j" || event.key === "k") {
      var shown = visibleSteps();
      var top = 70;
      var next = event.key === "j"
        ? shown.find(function (step) { return step.getBoundingClientRect().top > top + 1; })
        : shown.slice().reverse().find(function (step) { return step.getBoundingClientRect().top < top - 1; });
      if (next) {
        next.open = true;
        fill(next);
        next.scrollIntoView({ block: "start" });
        if (history.replaceState) { history.replaceState(null, "", "#" + encodeURIComponent(next.id)); }
      }
    }
  });

  /* A printed handout: every step open, with its code, and the slices of small tensors. */
  window.addEventListener("beforeprint", function () {
    scopes.forEach(function (scope) { scope.open = true; });
    steps.forEach(function (step) { step.open = true; fill(step); });
    /* small tensors print their slice: a handout shows the numbers, not a closed triangle */
    Array.prototype.forEach.call(document.querySelectorAll("details.slice[data-print-open]"), function (slice) { slice.open = true; });
  });
})();
