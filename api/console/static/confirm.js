// yingji console: confirmations before irreversible or mass actions. A form, or the button that submits it,
// or any button or link with data-confirm="…" asks first, in a dialog of the page saying what will happen
// (the attribute's text); nothing is sent unless the user goes ahead. data-confirm-go names the button that
// goes ahead. Works for plain forms, htmx forms and htmx buttons (the event is stopped before htmx sees it).
(function () {
  "use strict";
  var en = document.documentElement.lang === "en";
  var TEXT = en ? { title: "Please confirm", go: "Go ahead", back: "Cancel" }
                : { title: "请确认", go: "确定执行", back: "取消" };
  var dialog = null, pending = null;

  function build() {
    dialog = document.createElement("dialog");
    dialog.className = "confirm"; dialog.id = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-title");
    dialog.innerHTML = '<h2 id="confirm-title"></h2><p id="confirm-text"></p>' +
      '<div class="actions"><button type="button" id="confirm-go" class="danger"></button>' +
      '<button type="button" id="confirm-back" class="secondary"></button></div>';
    document.body.appendChild(dialog);
    dialog.querySelector("#confirm-title").textContent = TEXT.title;
    dialog.querySelector("#confirm-back").textContent = TEXT.back;
    dialog.querySelector("#confirm-back").addEventListener("click", function () { close(false); });
    dialog.querySelector("#confirm-go").addEventListener("click", function () { close(true); });
    dialog.addEventListener("cancel", function (e) { e.preventDefault(); close(false); });  // Esc
  }

  function close(go) {
    var then = pending; pending = null;
    if (dialog.open) dialog.close();
    if (go && then) then();
  }

  function ask(text, goLabel, then) {
    if (!dialog) build();
    dialog.querySelector("#confirm-text").textContent = text;
    dialog.querySelector("#confirm-go").textContent = goLabel || TEXT.go;
    pending = then;
    if (dialog.showModal) dialog.showModal(); else dialog.setAttribute("open", "");
    dialog.querySelector("#confirm-back").focus();  // the safe choice has the focus
  }

  window.yingjiConfirm = ask;

  // a form (or its submitter) with data-confirm
  document.addEventListener("submit", function (e) {
    var form = e.target, btn = e.submitter || null;
    var holder = (btn && btn.hasAttribute("data-confirm")) ? btn : (form.hasAttribute("data-confirm") ? form : null);
    if (!holder) return;
    if (form.dataset.confirmed === "1") { delete form.dataset.confirmed; return; }
    e.preventDefault(); e.stopImmediatePropagation();
    ask(holder.getAttribute("data-confirm"), holder.getAttribute("data-confirm-go"), function () {
      form.dataset.confirmed = "1";
      if (form.requestSubmit) form.requestSubmit(btn && btn.form === form ? btn : undefined);
      else { if (btn && btn.name) { var h = document.createElement("input"); h.type = "hidden"; h.name = btn.name; h.value = btn.value; form.appendChild(h); } form.submit(); }
    });
  }, true);

  // a link or a button outside a submitting form (an htmx button) with data-confirm
  document.addEventListener("click", function (e) {
    var el = e.target.closest && e.target.closest("a[data-confirm], button[data-confirm]");
    if (!el) return;
    var htmxVerb = el.matches("[hx-post], [hx-put], [hx-delete], [hx-patch], [hx-get], [data-hx-post]");
    if ((el.tagName === "BUTTON" && el.form && el.type === "submit" && !htmxVerb)) return;  // forms: above
    if (el.dataset.confirmed === "1") { delete el.dataset.confirmed; return; }
    e.preventDefault(); e.stopImmediatePropagation();
    ask(el.getAttribute("data-confirm"), el.getAttribute("data-confirm-go"), function () {
      el.dataset.confirmed = "1";
      el.click();
    });
  }, true);
})();
