// The Jobs pages: durations (as web/job_views.human_seconds words them) of jobs still going count up every second (elements with data-since, an ISO time).
(function () {
  function words(seconds) {
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    const two = (n) => String(n).padStart(2, "0");
    if (h) return m ? h + "h " + two(m) + "m" : h + "h";
    if (m) return s ? m + "m " + two(s) + "s" : m + "m";
    return s + "s";
  }
  function tick() {
    document.querySelectorAll("[data-since]").forEach((el) => {
      const since = Date.parse(el.dataset.since);
      if (!isNaN(since)) el.textContent = words(Math.max(0, Math.floor((Date.now() - since) / 1000)));
    });
  }
  setInterval(tick, 1000);
})();
