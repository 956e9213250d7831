// yingji console: the live duty desk. Its server-sent events (/console/desk/stream) carry every alarm now
// (new warnings and call-outs, overdue time limits, unreachable persons); an alarm the page has not seen
// sounds (WebAudio, unless muted: remembered in localStorage), flashes a banner naming it and, where the
// user allowed it, shows a browser notification; then the desk refreshes itself (also when anything else
// on it moved). window.yingjiDesk exposes what tests observe: the count of sounds started.
(function () {
  "use strict";
  var desk = document.getElementById("desk");
  if (!desk || !window.EventSource) return;
  var L = JSON.parse((document.getElementById("desk-labels") || {}).textContent || "{}");
  var MUTE_KEY = "yingji.desk.muted";
  var banner = document.getElementById("alarm"), list = document.getElementById("alarm-list");
  var muteBtn = document.getElementById("alarm-mute"), notifyBtn = document.getElementById("alarm-notify");
  var live = document.getElementById("desk-live");
  var known = {};
  JSON.parse(desk.dataset.known || "[]").forEach(function (k) { known[k] = true; });
  var api = window.yingjiDesk = { sounds: 0, alarms: 0 };

  // ---------------------------------------------------------------- mute, remembered
  function muted() { try { return localStorage.getItem(MUTE_KEY) === "1"; } catch (e) { return false; } }
  function showMute() {
    var m = muted();
    muteBtn.setAttribute("aria-pressed", m ? "true" : "false");
    muteBtn.textContent = m ? (L.unmute || "Unmute") : (L.mute || "Mute");
  }
  muteBtn.addEventListener("click", function () {
    try { localStorage.setItem(MUTE_KEY, muted() ? "0" : "1"); } catch (e) { /* private mode: not remembered */ }
    showMute();
    if (muted()) stopSound(); else audio();  // a click lets the page sound later (autoplay rules)
  });
  showMute();

  // ---------------------------------------------------------------- sound (generated, nothing fetched)
  var ctx = null;
  function audio() {
    var C = window.AudioContext || window.webkitAudioContext;
    if (!C) return null;
    if (!ctx) { try { ctx = new C(); } catch (e) { return null; } }
    if (ctx.state === "suspended" && ctx.resume) ctx.resume().catch(function () {});
    return ctx;
  }
  function stopSound() { if (ctx && ctx.state === "running" && ctx.suspend) ctx.suspend().catch(function () {}); }
  var lastSound = 0;
  function sound() {  // a burst of alarms (a warning and the call-out it starts) sounds once
    if (muted() || Date.now() - lastSound < 3000) return;
    lastSound = Date.now();
    api.sounds += 1;
    banner.dataset.sounds = String(api.sounds);
    var c = audio();
    if (!c) return;
    var t = c.currentTime + 0.05;
    for (var i = 0; i < 6; i++) {  // three two-tone beeps
      var osc = c.createOscillator(), gain = c.createGain();
      osc.type = "square"; osc.frequency.value = i % 2 ? 660 : 880;
      gain.gain.setValueAtTime(0.0001, t); gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.22);
      osc.connect(gain); gain.connect(c.destination);
      osc.start(t); osc.stop(t + 0.25);
      t += i % 2 ? 0.45 : 0.25;
    }
  }

  // ---------------------------------------------------------------- browser notifications, where allowed
  function canNotify() { return "Notification" in window; }
  if (canNotify() && Notification.permission === "default") {
    notifyBtn.hidden = false;
    notifyBtn.addEventListener("click", function () {
      Notification.requestPermission().then(function () { notifyBtn.hidden = Notification.permission !== "default"; });
    });
  }
  function notify(items) {
    if (!canNotify() || Notification.permission !== "granted") return;
    try {
      var n = new Notification(L.title || "yingji", {
        body: items.map(describe).join("\n"), tag: "yingji-desk", renotify: true, requireInteraction: true });
      n.onclick = function () { window.focus(); n.close(); };
    } catch (e) { /* a page without notification rights (e.g. Android Chrome needs a service worker) */ }
  }

  // ---------------------------------------------------------------- the banner
  function describe(a) { return (L[a.kind] || a.kind) + ":" + a.name + (a.detail ? "(" + a.detail + ")" : ""); }
  function raise(items) {
    api.alarms += items.length;
    items.forEach(function (a) {
      var li = document.createElement("li"), link = document.createElement("a");
      li.dataset.kind = a.kind; li.dataset.key = a.key;
      link.href = a.href || "/console/desk"; link.textContent = describe(a);
      li.appendChild(link); list.insertBefore(li, list.firstChild);
    });
    while (list.children.length > 20) list.removeChild(list.lastChild);
    banner.hidden = false;
    banner.classList.add("flashing");
    sound();
    notify(items);
  }
  document.getElementById("alarm-dismiss").addEventListener("click", function () {
    banner.hidden = true; banner.classList.remove("flashing"); list.textContent = ""; stopSound();
  });

  // ---------------------------------------------------------------- refreshing the desk
  var busy = false, again = false, last = 0, timer = null;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true; last = Date.now();
    fetch(location.pathname + location.search, { credentials: "same-origin", headers: { "X-Desk-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("desk-body");
        var here = document.getElementById("desk-body");
        if (fresh && here) { here.replaceWith(fresh); if (window.htmx) htmx.process(fresh); }
        desk.dataset.refreshed = String((parseInt(desk.dataset.refreshed || "0", 10) || 0) + 1);
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  function refreshSoon() {  // everything else that moves (acknowledgements): at most every 2 s
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, Math.max(0, 2000 - (Date.now() - last)));
  }

  // ---------------------------------------------------------------- the stream
  var es = new EventSource(desk.dataset.stream);
  es.addEventListener("alarms", function (e) {
    var now = JSON.parse(e.data), fresh = [], seen = {};
    now.forEach(function (a) { seen[a.key] = true; if (!known[a.key]) fresh.push(a); });
    known = seen;
    desk.dataset.live = "on";
    if (live) { live.classList.remove("off"); live.textContent = L.live || "live"; }
    if (fresh.length) { raise(fresh); refresh(); }
  });
  es.addEventListener("changed", refreshSoon);
  es.onerror = function () {
    desk.dataset.live = "off";
    if (live) { live.classList.add("off"); live.textContent = L.offline || "reconnecting"; }
  };
  window.addEventListener("pagehide", function () { es.close(); });
})();
