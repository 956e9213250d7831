// A refused form keeps what was typed: one mechanism for every console form.
//
// On submit, a POST form's visible fields (not hidden ones, passwords, files, the CSRF token) are kept in
// sessionStorage under the form's action. When the answer is a page that shows an error (an element with
// role="alert" in <main>) and holds a form with the same action, the kept values are put back into it and a
// note says so; any other answer forgets them. A form opts out with data-keep="off" (login, tokens).
(function () {
  "use strict";
  var KEY = "yj-form-kept";
  var MAX_AGE_MS = 10 * 60 * 1000;

  function actionOf(form) {
    var a = form.getAttribute("action") || window.location.pathname;
    try { return new URL(a, window.location.href).pathname; } catch (e) { return a; }
  }

  function keepable(el) {
    if (!el.name || el.disabled || el.name === "csrf") return false;
    var type = (el.type || "").toLowerCase();
    return ["hidden", "password", "file", "submit", "button", "reset", "image"].indexOf(type) < 0;
  }

  function save(form) {
    if ((form.getAttribute("method") || "get").toLowerCase() !== "post") return;
    if (form.dataset.keep === "off" || form.querySelector("input[type=password]")) return;
    var fields = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!keepable(el)) return;
      var type = (el.type || "").toLowerCase();
      if (type === "checkbox" || type === "radio") fields.push([el.name, el.value, el.checked]);
      else if (el.multiple && el.options) {
        fields.push([el.name, Array.prototype.filter.call(el.options, function (o) { return o.selected; })
          .map(function (o) { return o.value; }), null]);
      } else fields.push([el.name, el.value, null]);
    });
    try {
      sessionStorage.setItem(KEY, JSON.stringify({action: actionOf(form), at: Date.now(), fields: fields}));
    } catch (e) { /* storage full or off: nothing kept */ }
  }

  function restore(form, fields) {
    var byName = {};
    fields.forEach(function (f) { (byName[f[0]] = byName[f[0]] || []).push(f); });
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!keepable(el) || !byName[el.name]) return;
      var type = (el.type || "").toLowerCase();
      var kept = byName[el.name];
      if (type === "checkbox" || type === "radio") {
        var match = kept.filter(function (f) { return f[1] === el.value; })[0];
        if (match) el.checked = !!match[2];
      } else if (el.multiple && el.options) {
        var values = kept[0][1] || [];
        Array.prototype.forEach.call(el.options, function (o) { o.selected = values.indexOf(o.value) >= 0; });
      } else {
        el.value = kept.shift()[1];
        if (!kept.length) delete byName[el.name];
      }
    });
    form.dataset.kept = "1";
    for (var p = form.parentElement; p; p = p.parentElement) { if (p.tagName === "DETAILS") p.open = true; }
    var note = document.createElement("p");
    note.className = "muted small form-kept";
    note.setAttribute("role", "status");
    note.textContent = document.documentElement.lang === "en" ? "What you typed was kept." : "您填写的内容已保留。";
    form.insertBefore(note, form.firstChild);
  }

  // A form for some roles only (<form data-roles="duty_staff duty_cadre">) is shown disabled to the other
  // roles, saying who may use it. The admin, whom the console lets try every step, sees it as it is: the
  // procedure answers (and a refused form keeps its text, above).
  function disableForOthers() {
    var meta = document.querySelector("meta[name=user-role]");
    var role = meta ? meta.content : "";
    var table = document.getElementById("role-names");
    if (!role || role === "admin" || !table) return;
    var names = JSON.parse(table.textContent);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-roles]"), function (form) {
      var allowed = form.dataset.roles.split(/\s+/).filter(Boolean);
      if (!allowed.length || allowed.indexOf(role) >= 0) return;
      Array.prototype.forEach.call(form.elements, function (el) { if (el.type !== "hidden") el.disabled = true; });
      form.classList.add("not-for-role");
      var note = document.createElement("p");
      note.className = "muted small form-not-for-role";
      var sep = document.documentElement.lang === "en" ? ", " : "、";
      note.textContent = names.not_for.replace("{role}", names.names[role] || role)
        .replace("{allowed}", allowed.map(function (r) { return names.names[r] || r; }).join(sep));
      form.insertBefore(note, form.firstChild);
    });
  }

  function onLoad() {
    disableForOthers();
    var raw = null;
    try { raw = sessionStorage.getItem(KEY); sessionStorage.removeItem(KEY); } catch (e) { return; }
    if (!raw) return;
    var kept;
    try { kept = JSON.parse(raw); } catch (e) { return; }
    if (!kept || Date.now() - kept.at > MAX_AGE_MS) return;
    var main = document.getElementById("main") || document.body;
    if (!main.querySelector("[role=alert]")) return;  // the step went through: nothing to give back
    var forms = Array.prototype.filter.call(document.querySelectorAll("form"), function (f) {
      return actionOf(f) === kept.action;
    });
    if (forms.length) restore(forms[0], kept.fields);
  }

  document.addEventListener("submit", function (ev) {
    // first (capture): what was typed is kept even when confirm.js then asks before the form goes
    save(ev.target);
  }, true);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", onLoad);
  else onLoad();
})();
