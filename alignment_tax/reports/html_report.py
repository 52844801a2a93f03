"""The report as one self-contained HTML file: inline CSS, inline SVG, one inline script.

The page is rendered by jinja2 with autoescaping on, so every piece of text from a run (model
outputs, inputs, references, folder names) is escaped; the only markup inserted unescaped is
the SVG this package draws (drawn by matplotlib, whose SVG writer escapes its text; see :mod:`alignment_tax.reports.svg`). A
Content-Security-Policy in the page allows no network access at all and only the page's own
script, by its hash: even text that escaped escaping could not run.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from markupsafe import Markup

from alignment_tax.reports import health, templates
from alignment_tax.reports.content import Report
from alignment_tax.reports.html_text import show
from alignment_tax.reports.textsafe import visible

TEMPLATE = "report.html.jinja"

# The item browser's filter: which rows to show for the chosen task, flip kind (or health flag),
# run and text. A row's data-flips holds "kind:run" tokens; "any flip" matches only the flips.
SCRIPT = """
(function () {
  "use strict";
  var task = document.getElementById("item-task");
  var kind = document.getElementById("item-kind");
  var run = document.getElementById("item-run");
  var query = document.getElementById("item-query");
  var count = document.getElementById("item-count");
  if (!task) { return; }
  var FLIPS = ["lost", "gained", "worse", "better"];
  function matches(row, k, r, q) {
    if (k !== "all") {
      var tokens = (row.getAttribute("data-flips") || "").split(" ");
      var hit = tokens.some(function (t) {
        if (!t) { return false; }
        var parts = t.split(":");
        var kindOk = k === "any" ? FLIPS.indexOf(parts[0]) !== -1 : parts[0] === k;
        return kindOk && (r === "any" || parts[1] === r);
      });
      if (!hit) { return false; }
    }
    return !q || row.textContent.toLowerCase().indexOf(q) !== -1;
  }
  function update() {
    var shown = 0, total = 0;
    var q = query.value.trim().toLowerCase();
    document.querySelectorAll(".items-task").forEach(function (block) {
      var active = block.getAttribute("data-task") === task.value;
      block.hidden = !active;
      if (!active) { return; }
      block.querySelectorAll("tbody tr").forEach(function (row) {
        var ok = matches(row, kind.value, run.value, q);
        row.hidden = !ok;
        total += 1;
        if (ok) { shown += 1; }
      });
    });
    count.textContent = shown + " of " + total + " items shown";
  }
  [task, kind, run].forEach(function (el) { el.addEventListener("change", update); });
  query.addEventListener("input", update);
  update();
})();
"""


def script_hash(script: str = SCRIPT) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def content_security_policy() -> str:
    return (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src '{script_hash()}'; base-uri 'none'; form-action 'none'"
    )


def _visible_plain_text(value: Any) -> Any:
    """Every plain string the template prints (run and folder names, labels) with control and
    format characters shown: a run folder named with a right-to-left override must not reverse
    the text around it. Markup (model text through ``show``, SVG, the script) is already safe."""
    return visible(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def render(report: Report) -> str:
    """The whole page."""
    environment = templates.environment(autoescape=True, finalize=_visible_plain_text, show=show)
    return environment.get_template(TEMPLATE).render(
        **templates.context(report),
        script=Markup(SCRIPT),
        csp=Markup(content_security_policy()),
        flip_kinds=[
            ("any", "any flip"),
            ("lost", "lost: base right → run wrong"),
            ("gained", "gained: base wrong → run right"),
            ("worse", "worse than base (task metric)"),
            ("better", "better than base (task metric)"),
            *[(flag, f"{label} output") for flag, label in health.FLAG_LABELS.items()],
        ],
    )
