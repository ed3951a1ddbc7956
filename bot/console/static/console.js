// smsbot console: keeps a thread up to date and previews a message while it is typed. No libraries.
(function () {
  "use strict";

  function pollThread(box) {
    var url = box.getAttribute("data-poll");
    var last = box.innerHTML;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null && html.trim() !== last.trim()) {
            var atBottom = window.innerHeight + window.scrollY >= document.body.offsetHeight - 40;
            box.innerHTML = html;
            last = html;
            if (atBottom) { window.scrollTo(0, document.body.scrollHeight); }
          }
        })
        .catch(function () {})
        .then(function () { setTimeout(tick, 2000); });
    }
    setTimeout(tick, 2000);
  }

  function money(minor) {
    if (minor === null || minor === undefined) { return "–"; }
    var sign = minor < 0 ? "-" : "";
    var abs = Math.abs(minor);
    return sign + Math.floor(abs / 100) + "." + String(abs % 100).padStart(2, "0");
  }

  function previewSend(form) {
    var url = form.getAttribute("data-preview");
    var token = form.querySelector("input[name=csrf_token]").value;
    var timer = null;
    function show(id, text) { document.getElementById(id).textContent = text; }
    function toggleMode() {
      var group = form.querySelector("input[name=mode][value=group]").checked;
      form.querySelector(".when-phones").hidden = group;
      form.querySelector(".when-group").hidden = !group;
    }
    function refresh() {
      fetch(url, { method: "POST", body: new FormData(form), credentials: "same-origin",
                   headers: { "X-CSRF-Token": token } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (!p) { return; }
          show("pv-encoding", p.encoding);
          show("pv-characters", p.characters + " (" + p.units + " units)");
          show("pv-segments", p.segments);
          show("pv-recipients", p.recipients);
          show("pv-price", money(p.price) + " " + p.currency);
          show("pv-balance", p.balance_after === null ? "invoiced" : money(p.balance_after) + " " + p.currency);
          document.getElementById("pv-balance").className = p.balance_after !== null && p.balance_after < 0 ? "bad" : "";
          var box = document.getElementById("pv-ucs2");
          box.hidden = p.ucs2_characters.length === 0;
          box.querySelector(".chars").textContent = p.ucs2_characters.map(function (c) {
            return "\u201c" + c + "\u201d U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
          }).join(", ");
        })
        .catch(function () {});
    }
    function later() { clearTimeout(timer); timer = setTimeout(refresh, 150); }
    form.addEventListener("input", later);
    form.addEventListener("change", function () { toggleMode(); later(); });
    toggleMode();
    refresh();
  }

  var thread = document.getElementById("thread");
  if (thread) { pollThread(thread); window.scrollTo(0, document.body.scrollHeight); }
  var send = document.getElementById("send-form");
  if (send) { previewSend(send); }
})();
