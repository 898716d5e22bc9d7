// Keyboard shortcuts on the staff pages: j/k next/previous ticket, o or Enter open it,
// r answer and n note (on a ticket), / search, ? these keys. The pages work without this file. The rows are looked up at each
// key: htmx may have replaced the list since (the search box, the queues).
(function () {
  "use strict";
  var current = -1;

  document.addEventListener("htmx:afterSwap", function () { current = -1; });

  function select(index) {
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr.row"));
    if (!rows.length) { return; }
    if (current >= 0 && rows[current]) { rows[current].classList.remove("selected"); }
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows[current].classList.add("selected");
    rows[current].scrollIntoView({ block: "nearest" });
  }

  function toggleHelp() {
    var help = document.getElementById("keys");
    if (help) { help.remove(); return; }
    help = document.createElement("div");
    help.id = "keys";
    help.textContent = "j/k: next/previous · o: open · r: answer · n: note · /: search · ?: keys";
    document.body.appendChild(help);
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
        target.tagName === "SELECT" || target.isContentEditable)) { return; }
    if (event.key === "j") { select(current + 1); }
    else if (event.key === "k") { select(current - 1); }
    else if ((event.key === "o" || event.key === "Enter") && current >= 0) {
      var row = document.querySelectorAll("tr.row")[current];
      var link = row && row.querySelector("a.open");
      if (link) { window.location.href = link.href; }
    } else if (event.key === "r" || event.key === "n") {
      var kind = document.querySelector("input[name=kind][value=" +
        (event.key === "r" ? "answer" : "note") + "]");
      var text = document.getElementById("text");
      if (!kind || !text) { return; }
      event.preventDefault();
      kind.checked = true;
      text.focus();
    } else if (event.key === "/") {
      var search = document.getElementById("search");
      if (search) { event.preventDefault(); search.focus(); }
    } else if (event.key === "?") { toggleHelp(); }
    else { return; }
  });
}());
