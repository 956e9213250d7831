// yingji console: CSRF header for htmx, countdowns, and the call-out board's live updates (EventSource).
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:configRequest", function (e) {
    if (meta && meta.content) e.detail.headers["X-CSRF-Token"] = meta.content;
  });

  var tz = document.documentElement.dataset.tz || undefined;
  var lang = document.documentElement.lang === "en" ? "en" : "zh";
  var L = JSON.parse((document.getElementById("labels") || {}).textContent || "{}");

  function two(n) { return (n < 10 ? "0" : "") + n; }
  function span(ms) {
    var s = Math.floor(Math.abs(ms) / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    if (h >= 24) {  // over a day: days and hours (6天23小时), not 167:59:59
      var d = Math.floor(h / 24);
      return lang === "en" ? d + "d " + (h % 24) + "h" : d + "天" + (h % 24) + "小时";
    }
    return (h ? h + ":" + two(m) : m) + ":" + two(s % 60);
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      if (!el.dataset.due) { el.textContent = ""; return; }
      var left = Date.parse(el.dataset.due) - now;
      el.classList.toggle("late", left < 0);
      el.textContent = left < 0 ? (L.overdue || "overdue") + " +" + span(left) : (L.left || "") + " " + span(left);
    });
  }
  setInterval(tick, 1000); tick();

  // the replay slider follows an instant chosen elsewhere (a timeline row)
  document.addEventListener("htmx:afterSwap", function (e) {
    var st = document.getElementById("replay-state"), slider = document.getElementById("slider");
    if (st && slider && e.detail.target.id === "state" && st.dataset.seconds !== "" && document.activeElement !== slider) {
      slider.value = st.dataset.seconds;
    }
    tick();
  });

  function clock(iso) {
    if (!iso) return "";
    try { return new Date(iso).toLocaleTimeString(lang === "en" ? "en-GB" : "zh-CN", { timeZone: tz, hour12: false }); }
    catch (e) { return iso; }
  }

  // ---------------------------------------------------------------- the board
  var board = document.getElementById("board");
  if (!board || !window.EventSource) return;
  var body = board.querySelector("tbody"), tpl = document.getElementById("row-tpl");
  var live = document.getElementById("live"), detail = document.getElementById("detail");
  var tierFilter = board.dataset.tier, stateFilter = board.dataset.state, room = parseInt(board.dataset.room || "0", 10);

  function fill(tr, r) {
    tr.id = "t-" + r.id;
    tr.dataset.state = r.state;
    var f = function (name) { return tr.querySelector('[data-f="' + name + '"]'); };
    f("label").textContent = r.label;
    f("tier").textContent = (L.tiers && L.tiers[r.tier]) || r.tier;
    var st = f("state"); st.className = "badge s-" + r.state; st.textContent = (L.states && L.states[r.state]) || r.state;
    var due = f("due"); due.dataset.due = r.due || "";
    f("attempts").textContent = r.attempts;
    f("last").textContent = r.last ? " · " + r.last : "";
    f("ack").textContent = r.ack_at ? clock(r.ack_at) + " · " + ((L.channels && L.channels[r.ack_channel]) || r.ack_channel || "") +
      (r.ack_by ? " (" + r.ack_by + ")" : "") + (r.ack_late ? " · " + (L.ack_late || "late") : "") : "";
    f("escalated").textContent = (r.escalated || []).join("、");
    var btn = tr.querySelector("button[data-target-id]");
    if (btn) btn.setAttribute("aria-label", (L.details || "") + ": " + r.label);
    if (btn && btn.dataset.targetId !== String(r.id)) {
      btn.dataset.targetId = r.id;
      btn.setAttribute("hx-get", board.dataset.detailBase + r.id);
      if (window.htmx) htmx.process(btn);
    }
  }

  function onRows(e) {
    var rows = JSON.parse(e.data), touched = false, openId = detail && detail.dataset.targetId;
    rows.forEach(function (r) {
      var tr = document.getElementById("t-" + r.id);
      if (!tr) {
        if (room <= 0 || (tierFilter && r.tier !== tierFilter) || (stateFilter && r.state !== stateFilter)) return;
        tr = tpl.content.firstElementChild.cloneNode(true);
        body.appendChild(tr); room -= 1;
        if (window.htmx) htmx.process(tr);
        var empty = document.getElementById("no-rows"); if (empty) empty.remove();
      }
      fill(tr, r);
      tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash");
      if (openId && String(r.id) === openId) touched = true;
    });
    if (touched && window.htmx) {
      var busy = detail.querySelector("textarea");
      if (!busy || (!busy.value && document.activeElement !== busy)) htmx.ajax("GET", board.dataset.detailBase + openId, { target: "#detail" });
    }
    tick();
  }

  function onCounts(e) {
    var counts = JSON.parse(e.data), totals = {};
    Object.keys(counts).forEach(function (tier) {
      var sum = 0;
      Object.keys(counts[tier]).forEach(function (st) {
        var n = counts[tier][st]; sum += n; totals[st] = (totals[st] || 0) + n;
        var cell = document.querySelector('[data-count="' + tier + ':' + st + '"]'); if (cell) cell.textContent = n;
      });
      var t = document.querySelector('[data-count="' + tier + ':total"]'); if (t) t.textContent = sum;
    });
    var all = 0;
    Object.keys(totals).forEach(function (st) {
      all += totals[st];
      document.querySelectorAll('[data-total="' + st + '"]').forEach(function (c) { c.textContent = totals[st]; });
    });
    document.querySelectorAll('[data-total="total"]').forEach(function (c) { c.textContent = all; });
    var missing = Object.keys(counts).some(function (tier) { return !document.querySelector('[data-count="' + tier + ':total"]'); });
    if (missing && board.dataset.reloadOnTier !== "done") { board.dataset.reloadOnTier = "done"; location.reload(); }
  }

  function onStatus(e) {
    var s = JSON.parse(e.data).status, el = document.getElementById("status");
    if (el && s) { el.textContent = (L.states && L.states[s]) || s; el.className = "badge s-" + (s === "running" ? "notified" : "acknowledged"); el.dataset.status = s; }
  }

  var es = new EventSource(board.dataset.stream);
  es.addEventListener("rows", onRows);
  es.addEventListener("counts", onCounts);
  es.addEventListener("status", onStatus);
  es.onopen = function () { if (live) { live.classList.remove("off"); live.textContent = L.live || "live"; } };
  es.onerror = function () { if (live) { live.classList.add("off"); live.textContent = L.disconnected || "reconnecting"; } };
  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target === detail) {
      var inner = detail.querySelector("[data-target-id]");
      var opened = inner && detail.dataset.targetId !== inner.dataset.targetId;
      detail.dataset.targetId = inner ? inner.dataset.targetId : "";
      if (opened) detail.focus({ preventScroll: true });  // keyboard users land on what they opened
    }
  });
})();
