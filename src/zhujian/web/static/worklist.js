// Worklist: j / k move the selection, Enter opens the selected report. A static file (not inline) so the
// Content-Security-Policy can forbid inline script.
(function () {
  const rows = Array.from(document.querySelectorAll("tr[data-href]"));
  let current = rows.length ? 0 : -1;
  function mark() { rows.forEach((r, i) => r.classList.toggle("selected", i === current)); }
  mark();
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j" && current < rows.length - 1) { current++; mark(); }
    else if (event.key === "k" && current > 0) { current--; mark(); }
    else if (event.key === "Enter" && current >= 0) { window.location = rows[current].dataset.href; }
  });
})();
