"""Reports: compare evaluated runs in one HTML page or a Markdown file with its plots.

Public API (imported lazily, so ``alignment-tax --help`` does not pay for numpy or scipy)::

    from alignment_tax.reports import build_report
    build_report(["runs/eval/sft", "runs/eval/rl"], out="report.html", baseline="sft",
                 judge_files=["runs/judge/rl_vs_sft.json"])

Modules: ``runs`` (loading and checking run folders and their bases), ``judges`` (judge summary
files), ``comparisons`` (paired bootstrap intervals, McNemar, comparability), ``headline``
(Table 3 and the at-a-glance table), ``items`` (the item browser and flips), ``svg`` (matplotlib
figures as inline SVG), ``plots`` (the plots) and ``labels`` (their point labels), ``figures`` (which
plots a report shows, with captions: the tax over training too), ``content`` (everything a report
shows), ``templates`` (the jinja2 environment, number filters and notes both
renderers share), ``html_report`` and ``markdown_report`` (renderers of ``report.html.jinja`` and
``report.md.jinja``), ``references`` (published numbers: the loader and the shipped YAML) and
``published`` (their rows beside the runs), ``textsafe`` (visible, escaped text), ``build`` (the
command), ``commands`` (argparse ``register``).
"""

from importlib import import_module

_EXPORTS = {
    "build_report": "build",
    "write_report": "build",
    "assemble": "content",
    "Report": "content",
    "Comparator": "comparisons",
    "register": "commands",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"alignment_tax.reports.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'alignment_tax.reports' has no attribute {name!r}")
