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
  // Rows keep the board's order live: those nobody reached (unreachable, escalated, every call failed, past
  // their wait) first, then those being called, then the acknowledged; a progress bar per tier; bulk 代为确认.
  var board = document.getElementById("board");
  if (!board || !window.EventSource) return;
  var body = board.querySelector("tbody"), tpl = document.getElementById("row-tpl");
  var live = document.getElementById("live"), detail = document.getElementById("detail");
  var tierFilter = board.dataset.tier, stateFilter = board.dataset.state, room = parseInt(board.dataset.room || "0", 10);
  var B = JSON.parse((document.getElementById("board-labels") || {}).textContent || "{}");
  var failed = {}; (B.failed || []).forEach(function (s) { failed[s] = true; });
  var SETTLED = { acknowledged: true, canceled: true, unreachable: true };

  function flagOf(tr) {
    var due = tr.querySelector('[data-f="due"]');
    if (tr.dataset.flag) return tr.dataset.flag;
    if (!SETTLED[tr.dataset.state] && due && due.dataset.due && Date.parse(due.dataset.due) < Date.now()) return "overdue";
    return "";
  }
  function rankOf(tr) { return flagOf(tr) ? 0 : parseInt(tr.dataset.rank || "1", 10); }
  function idOf(tr) { return parseInt(tr.id.slice(2), 10); }
  function before(a, b) { var ra = rankOf(a), rb = rankOf(b); return ra !== rb ? ra < rb : idOf(a) < idOf(b); }

  function place(tr) {  // move the row where the order puts it (only when it is out of place)
    var prev = tr.previousElementSibling, next = tr.nextElementSibling;
    if ((!prev || !prev.id || before(prev, tr)) && (!next || !next.id || before(tr, next))) return;
    var rows = body.querySelectorAll("tr[id^='t-']"), at = null;
    for (var i = 0; i < rows.length; i++) { if (rows[i] !== tr && before(tr, rows[i])) { at = rows[i]; break; } }
    body.insertBefore(tr, at);
  }

  function showFlag(tr) {
    var why = flagOf(tr), el = tr.querySelector('[data-f="flag"]');
    tr.classList.toggle("flagged", !!why);
    if (el) el.textContent = why ? "⚠ " + ((B.flags && B.flags[why]) || why) : "";
  }

  function fill(tr, r) {
    tr.id = "t-" + r.id;
    tr.dataset.state = r.state;
    tr.dataset.rank = r.rank;
    tr.dataset.flag = r.flag || "";
    var f = function (name) { return tr.querySelector('[data-f="' + name + '"]'); };
    f("label").textContent = r.label;
    f("tier").textContent = (L.tiers && L.tiers[r.tier]) || r.tier;
    var st = f("state"); st.className = "badge s-" + r.state; st.textContent = (L.states && L.states[r.state]) || r.state;
    var due = f("due"); due.dataset.due = r.due || "";
    f("attempts").textContent = r.attempts;
    var tries = f("tries"); tries.textContent = "";
    (r.tries || []).forEach(function (c) {
      var sp = document.createElement("span");
      sp.className = "try" + (failed[c[1]] ? " bad" : "");
      sp.dataset.channel = c[0]; sp.dataset.status = c[1];
      sp.textContent = ((L.channels && L.channels[c[0]]) || c[0]) + " " + ((B.statuses && B.statuses[c[1]]) || c[1]);
      tries.appendChild(document.createTextNode(" · ")); tries.appendChild(sp);
    });
    f("ack").textContent = r.ack_at ? clock(r.ack_at) + " · " + ((L.channels && L.channels[r.ack_channel]) || r.ack_channel || "") +
      (r.ack_by ? " (" + r.ack_by + ")" : "") + (r.ack_late ? " · " + (L.ack_late || "late") : "") :
      r.answered_at ? clock(r.answered_at) + " · " + (L.answer_received || "answer received") : "";
    f("escalated").textContent = (r.escalated || []).join("、");
    var pick = f("pick");
    if (pick) {
      pick.value = r.id;
      pick.setAttribute("aria-label", (pick.getAttribute("aria-label") || "").split(":")[0] + ": " + r.label);
      pick.disabled = r.state === "acknowledged" || r.state === "canceled";
      if (pick.disabled) pick.checked = false;
    }
    var btn = tr.querySelector("button[data-target-id]");
    if (btn) btn.setAttribute("aria-label", (L.details || "") + ": " + r.label);
    if (btn && btn.dataset.targetId !== String(r.id)) {
      btn.dataset.targetId = r.id;
      btn.setAttribute("hx-get", board.dataset.detailBase + r.id);
      if (window.htmx) htmx.process(btn);
    }
    showFlag(tr);
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
      place(tr);
      tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash");
      if (openId && String(r.id) === openId) touched = true;
    });
    if (touched && window.htmx) {
      var busy = detail.querySelector("textarea");
      if (!busy || (!busy.value && document.activeElement !== busy)) htmx.ajax("GET", board.dataset.detailBase + openId, { target: "#detail" });
    }
    tick(); counted();
  }

  // a wait that runs out raises its row without a message from the server
  setInterval(function () {
    body.querySelectorAll("tr[id^='t-']").forEach(function (tr) {
      var had = tr.classList.contains("flagged");
      showFlag(tr);
      if (had !== tr.classList.contains("flagged")) place(tr);
    });
  }, 1000);

  function bar(key, p) {
    var el = document.querySelector('[data-progress="' + key + '"]');
    if (!el) return;
    var pct = function (n) { return p.total ? (100 * n / p.total) + "%" : "0%"; };
    el.querySelector(".pb-ack").style.width = pct(p.acknowledged);
    el.querySelector(".pb-notified").style.width = pct(p.notified - p.acknowledged);
    el.setAttribute("aria-valuenow", p.acknowledged); el.setAttribute("aria-valuemax", p.total);
    var txt = document.querySelector('[data-progress-text="' + key + '"]');
    if (txt) txt.textContent = B.acked + " " + p.acknowledged + " / " + B.notified + " " + p.notified + " / " + B.total + " " + p.total;
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
      bar(tier, { acknowledged: counts[tier].acknowledged || 0, notified: sum - (counts[tier].pending || 0), total: sum });
    });
    var all = 0;
    Object.keys(totals).forEach(function (st) {
      all += totals[st];
      document.querySelectorAll('[data-total="' + st + '"]').forEach(function (c) { c.textContent = totals[st]; });
    });
    document.querySelectorAll('[data-total="total"]').forEach(function (c) { c.textContent = all; });
    bar("all", { acknowledged: totals.acknowledged || 0, notified: all - (totals.pending || 0), total: all });
    var missing = Object.keys(counts).some(function (tier) { return !document.querySelector('[data-count="' + tier + ':total"]'); });
    if (missing && board.dataset.reloadOnTier !== "done") { board.dataset.reloadOnTier = "done"; location.reload(); }
  }

  function onStatus(e) {
    var s = JSON.parse(e.data).status, el = document.getElementById("status");
    if (el && s) { el.textContent = (L.states && L.states[s]) || s; el.className = "badge s-" + (s === "running" ? "notified" : "acknowledged"); el.dataset.status = s; }
  }

  // bulk 代为确认: the ticked rows, one note
  var pickAll = document.getElementById("pick-all"), bulkCount = document.getElementById("bulk-count");
  function counted() {
    if (bulkCount) bulkCount.textContent = body.querySelectorAll('input[data-f="pick"]:checked').length;
  }
  body.addEventListener("change", function (e) { if (e.target.matches('input[data-f="pick"]')) counted(); });
  if (pickAll) pickAll.addEventListener("change", function () {
    body.querySelectorAll('input[data-f="pick"]').forEach(function (c) { if (!c.disabled) c.checked = pickAll.checked; });
    counted();
  });
  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target.id !== "bulk-result" || e.detail.xhr.status >= 400) return;
    body.querySelectorAll('input[data-f="pick"]:checked').forEach(function (c) { c.checked = false; });
    if (pickAll) pickAll.checked = false;
    var note = document.getElementById("bulk-note"); if (note) note.value = "";
    counted();
  });
  document.body.addEventListener("htmx:beforeSwap", function (e) {  // refusals (4xx) are shown, not dropped
    if (e.detail.xhr.status >= 400 && e.detail.xhr.status < 500 &&
        (e.detail.target.id === "bulk-result" || e.detail.target === detail)) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });

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
