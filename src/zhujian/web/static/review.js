// Review page: click selects a conclusion; j / k next and previous report, s opens the sign confirmation, u / d
// move the selected conclusion. Signing always goes through the confirmation dialog: its 取消 button (or Esc)
// closes it without posting. A static file (not inline) so the Content-Security-Policy can forbid inline script.
(function () {
  let selected = null;
  function select(id) {
    selected = id;
    document.querySelectorAll(".conclusion").forEach((el) => el.classList.toggle("selected", el.dataset.id === id));
  }
  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-opens]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.opens);
      if (dialog && !dialog.open) dialog.showModal();
      return;
    }
    const card = event.target.closest(".conclusion");
    if (card) select(card.dataset.id);
  });
  document.body.addEventListener("htmx:afterSwap", () => { if (selected) select(selected); });
  function press(selector) { const el = document.querySelector(selector); if (el) el.click(); }
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return;  // the dialog's own buttons answer, no shortcut
    if (event.key === "j") press("#next-report");
    else if (event.key === "k") press("#prev-report");
    else if (event.key === "s") { event.preventDefault(); press("#sign-button"); }
    else if ((event.key === "u" || event.key === "d") && selected) {
      press(`.conclusion[data-id="${CSS.escape(selected)}"] .move-${event.key === "u" ? "up" : "down"}`);
    }
  });
})();
