// yingji console: choosing a response level on the activation form. No level is chosen for the user: the
// select starts empty; the chosen level's 启动条件 (from the plan) shows under it, and the level the incident
// meets by its grade (if any) is marked as proposed, never selected.
(function () {
  "use strict";
  var form = document.getElementById("form-activate");
  if (!form) return;
  var plan = document.getElementById("act-plan"), incident = document.getElementById("act-incident");
  var level = document.getElementById("act-level");
  var proposal = document.getElementById("level-proposal"), cond = document.getElementById("start-condition");
  var C = JSON.parse(form.dataset.conditions || "{}"), P = JSON.parse(form.dataset.proposals || "{}");
  var L = JSON.parse((document.getElementById("level-labels") || {}).textContent || "{}");

  function update() {
    var levels = C[plan.value] || {};
    var proposed = ((P[incident && incident.value] || {})[plan.value]) || "";
    Array.prototype.forEach.call(level.options, function (o) {
      if (!o.value) return;
      var name = o.dataset.name || o.textContent;
      o.textContent = o.value === proposed ? name + "(" + (L.proposed || "proposed") + ")" : name;
      o.dataset.proposed = o.value === proposed ? "1" : "";
    });
    if (proposed && levels[proposed]) {
      proposal.hidden = false;
      proposal.dataset.level = proposed;
      proposal.textContent = (L.proposed || "proposed") + ":" + levels[proposed].name + " — " + (L.why || "") +
        "(" + levels[proposed].condition + ")";
    } else { proposal.hidden = true; proposal.dataset.level = ""; }
    var chosen = levels[level.value];
    cond.hidden = !chosen;
    cond.dataset.level = chosen ? level.value : "";
    cond.querySelector("span").textContent = chosen ? chosen.name + ":" + chosen.condition : "";
  }
  [plan, incident, level].forEach(function (el) { if (el) el.addEventListener("change", update); });
  update();
})();
