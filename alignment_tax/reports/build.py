"""``alignment-tax report``: runs (and judge files) in, one HTML or Markdown report out.

Usage::

    build_report(["runs/eval/sft", "runs/eval/rl"], out="report.html",
                 baseline="sft", judge_files=["runs/judge/rl_vs_sft.json"])
    # -> {'report': 'report.html', 'format': 'html', 'plots': [], ...}
"""

from __future__ import annotations

from pathlib import Path

from alignment_tax.errors import UserError
from alignment_tax.paths import check_output_file, write_text_atomically
from alignment_tax.reports.content import Report, assemble

HTML_SUFFIXES = (".html", ".htm")
MARKDOWN_SUFFIXES = (".md", ".markdown")


def output_format(out: str | Path) -> str:
    suffix = Path(out).suffix.lower()
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    raise UserError(f"--out must end in .html or .md (the format is taken from it), got {out}")


def plots_folder(out: Path) -> Path:
    """Where a Markdown report's plots go: ``<stem>_files/`` beside it."""
    return out.with_name(f"{out.stem}_files")


def write_report(report: Report, out: str | Path) -> dict:
    """Render ``report`` to ``out`` (HTML or Markdown by its suffix) and say what was written."""
    out = Path(out)
    kind = output_format(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name ending in .html or .md")
    out.parent.mkdir(parents=True, exist_ok=True)
    written_plots: list[str] = []
    if kind == "html":
        from alignment_tax.reports.html_report import render

        write_text_atomically(out, render(report))
    else:
        from alignment_tax.reports.markdown_report import render

        folder = plots_folder(out)
        text, plots = render(report, folder.name)
        if plots:
            folder.mkdir(exist_ok=True)
            for name, svg in plots.items():
                write_text_atomically(folder / name, svg)
                written_plots.append(str(folder / name))
        write_text_atomically(out, text)
    return {
        "report": str(out),
        "format": kind,
        "plots": written_plots,
        "runs": [run.name for run in report.runs],
        "baseline": report.baseline.name,
        "tasks": report.tasks,
        "judgements": len(report.judgements),
        "not_compared": report.flags,
        **(
            {
                "reference": report.published.reference.name,
                "published_beside": [f"{run} ({section}): {row}" for run, section, row in report.published.matches],
            }
            if report.published
            else {}
        ),
    }


def build_report(
    run_dirs: list[str | Path],
    out: str | Path,
    baseline: str | None = None,
    judge_files: list[str | Path] = (),
    controls: dict[str, str | list[str]] | None = None,
    reference: str | None = None,
    reference_map: list[str] | dict | None = None,
) -> dict:
    """Load and check the runs, compute every comparison, and write the report.

    ``controls`` maps a role (``negative``, ``positive``) to the run (or runs) that play it: see
    :mod:`alignment_tax.reports.controls`. ``reference`` and ``reference_map``: published numbers
    beside the runs, see :mod:`alignment_tax.reports.references`.
    """
    output_format(out)  # a wrong suffix or an unwritable place fails before any work
    check_output_file(out, "--out")
    report = assemble(
        run_dirs,
        baseline=baseline,
        judge_files=judge_files,
        controls=controls,
        reference=reference,
        reference_map=reference_map,
    )
    return write_report(report, out)
