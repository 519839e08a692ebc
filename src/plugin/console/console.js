// foureyes console: live updates, countdowns and local times. The pages
// work without this script; it only keeps them fresh.
"use strict";

(function () {
  // Times: the viewer's time zone in the text, UTC in the tooltip.
  const fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short",
  });
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      const t = new Date(el.getAttribute("datetime"));
      if (!isNaN(t)) {
        el.textContent = fmt.format(t);
        el.title = t.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
      }
    });
  }

  // Countdowns: two units, like the command line (3h12m, 4m5s).
  function short(secs) {
    if (secs <= 0) return "expired";
    const d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24,
      m = Math.floor(secs / 60) % 60, s = secs % 60;
    if (d > 0) return h > 0 ? d + "d" + h + "h" : d + "d";
    if (h > 0) return m > 0 ? h + "h" + m + "m" : h + "h";
    if (m > 0) return s > 0 ? m + "m" + s + "s" : m + "m";
    return s + "s";
  }
  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      const until = Date.parse(el.getAttribute("data-countdown"));
      if (!isNaN(until)) el.textContent = short(Math.floor((until - now) / 1000));
    });
  }

  // Live sections: refetch a section's fragment when the server announces
  // a change it shows; keep what the user is typing.
  function refresh(section) {
    const url = section.getAttribute("data-live");
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        return r.text().then(function (text) { return { ok: r.ok, text: text }; });
      })
      .then(function (r) {
        let notice = section.previousElementSibling;
        if (!notice || !notice.classList.contains("notice")) notice = null;
        if (!r.ok) {
          if (!notice) {
            notice = document.createElement("p");
            notice.className = "notice";
            notice.setAttribute("role", "status");
            section.parentNode.insertBefore(notice, section);
          }
          notice.textContent = "Could not refresh: " + r.text;
          return;
        }
        if (notice) notice.remove();
        const typed = {};
        section.querySelectorAll("input[type=text], textarea").forEach(function (el) {
          if (el.id) typed[el.id] = el.value;
        });
        const focused = document.activeElement && section.contains(document.activeElement)
          ? document.activeElement.id : null;
        section.innerHTML = r.text;
        Object.keys(typed).forEach(function (id) {
          const el = document.getElementById(id);
          if (el) el.value = typed[id];
        });
        if (focused) {
          const el = document.getElementById(focused);
          if (el) el.focus();
        }
        localTimes(section);
        tick();
        section.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {});
  }

  function live() {
    const sections = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    if (sections.length === 0 || !window.EventSource) return;
    const pending = {};
    function changed(kind) {
      sections.forEach(function (s) {
        const on = s.getAttribute("data-on");
        if (kind !== "all" && on !== kind) return;
        if (pending[s.id]) return;
        pending[s.id] = setTimeout(function () {
          delete pending[s.id];
          refresh(s);
        }, 150);
      });
    }
    const status = document.querySelector("[data-live-status]");
    const source = new EventSource("/events");
    ["requests", "bindings", "all"].forEach(function (kind) {
      source.addEventListener(kind, function () { changed(kind); });
    });
    source.onopen = function () { if (status) status.hidden = false; };
    source.onerror = function () { if (status) status.hidden = true; };
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    tick();
    setInterval(tick, 1000);
    live();
  });
})();
