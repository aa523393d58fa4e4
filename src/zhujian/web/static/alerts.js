// Countdowns of the alert worklist: each .countdown shows the time left until its data-due (ISO 8601), counted from
// the server's clock (data-now) plus the time since the page loaded, so a wrong client clock does not matter.
(function () {
  "use strict";
  const loaded = Date.now();
  const items = Array.from(document.querySelectorAll(".countdown[data-due]"));
  function format(ms) {
    const overdue = ms < 0;
    let seconds = Math.floor(Math.abs(ms) / 1000);
    const days = Math.floor(seconds / 86400);
    seconds -= days * 86400;
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const secs = seconds % 60;
    const clock = (days ? days + " 天 " : "") + String(hours).padStart(2, "0") + ":" +
      String(minutes).padStart(2, "0") + ":" + String(secs).padStart(2, "0");
    return overdue ? "已超时 " + clock : "剩余 " + clock;
  }
  function tick() {
    const elapsed = Date.now() - loaded;
    for (const item of items) {
      const left = Date.parse(item.dataset.due) - (Date.parse(item.dataset.now) + elapsed);
      item.textContent = format(left);
      item.classList.toggle("overdue", left < 0);
    }
  }
  if (items.length) {
    tick();
    window.setInterval(tick, 1000);
  }
})();
