"""The drift report's renderers: terminal table, Markdown (PR comments), JSON (machines).

Pure: a report value (``report/model.py``) in, text out, so every renderer is tested on a
hand-built report. ``report/cli.py`` does the I/O.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

from .model import REPORT_VERSION, DestinationReport, Report

MARKDOWN_MAX_ROWS = 50
"""Drifted targets listed per destination in Markdown, so a PR comment or chat message stays readable."""


# -- summary words shared by the renderers ----------------------------------------------------------
def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def kinds_text(dest: DestinationReport) -> str:
    return ", ".join(f"{n} {word}" for word, n in dest.drift_kinds())


def summary_line(report: Report) -> str:
    """The one-line verdict: ``N of M targets drifted across K destinations`` or ``all N targets warm``."""
    observed = [d for d in report.destinations if d.error is None]
    where = _plural(len(observed), "destination")
    if report.drifted:
        text = f"{report.drifted} of {report.total} targets drifted across {where}"
    elif observed:
        text = f"all {report.total} targets warm across {where}"
    else:
        text = "no destination could be read"
    if report.errors:
        text += f"; {_plural(len(report.errors), 'destination')} could not be read"
    return text


def _more(hidden: int) -> str:
    return f"…and {hidden} more"


# -- table (terminal) -------------------------------------------------------------------------------
TABLE_COLUMNS = ("STATUS", "URL", "REASON", "TASK", "TIME")


def render_table(report: Report, *, max_rows: Optional[int] = None) -> str:
    """A block per set/destination: a header with counts, then one row per drifted target; a summary line."""
    lines: list[str] = []
    for dest in report.destinations:
        head = f"{dest.set} / {dest.label}: "
        if dest.error is not None:
            lines.append(head + f"ERROR: {dest.error}")
            lines.append("")
            continue
        head += f"{dest.warm}/{dest.total} warm"
        if dest.drifted:
            head += f", {kinds_text(dest)}"
        if dest.verified_at:
            head += f" (verified {dest.verified_at})"
        lines.append(head)
        if dest.drifted:
            shown = dest.drifted if not max_rows else dest.drifted[:max_rows]
            rows = [(t.word, t.url, _one_line(t.reason) or "-", t.task_id or "-", t.at or "-") for t in shown]
            widths = [max(len(r[i]) for r in [TABLE_COLUMNS, *rows]) for i in range(len(TABLE_COLUMNS))]
            for row in [TABLE_COLUMNS, *rows]:
                lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            if len(shown) < len(dest.drifted):
                lines.append("  " + _more(len(dest.drifted) - len(shown)))
        lines.append("")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


# -- Markdown (PR comment, chat, job summary) ----------------------------------------------------------
def render_markdown(report: Report, *, max_rows: Optional[int] = MARKDOWN_MAX_ROWS) -> str:
    """A heading, a summary table, and a ``<details>`` block of drifted targets per destination with drift."""
    title = "### cdn-prefetch drift report" + (f": stack `{report.stack}`" if report.stack else "")
    verified = f" (generated {report.generated_at})" if report.generated_at else ""
    if report.in_sync:
        # A clean run says so in one line.
        return f"{title}\n\n:white_check_mark: {_md(summary_line(report))}{verified}.\n"
    icon = ":x:" if report.errors else ":warning:"
    out = [title, "", f"{icon} **{_md(summary_line(report))}**{verified}.", "",
           "| set | destination | warm | drifted | verified at |", "|---|---|---|---|---|"]
    for dest in report.destinations:
        if dest.error is not None:
            out.append(f"| {_md(dest.set)} | {_md(dest.label)} | – | **error** | – |")
            continue
        drift = f"{len(dest.drifted)} ({_md(kinds_text(dest))})" if dest.drifted else "0"
        out.append(f"| {_md(dest.set)} | {_md(dest.label)} | {dest.warm}/{dest.total} | {drift} | "
                   f"{dest.verified_at or '–'} |")
    for dest in report.errors:
        out += ["", f"**{_md(dest.set)} / {_md(dest.label)}** could not be read: {_md(dest.error or '')}"]
    for dest in report.destinations:
        if not dest.drifted:
            continue
        shown = dest.drifted if not max_rows else dest.drifted[:max_rows]
        out += ["", f"<details><summary><b>{_html(dest.set)} / {_html(dest.label)}</b>: "
                    f"{len(dest.drifted)} of {dest.total} not warm ({_html(kinds_text(dest))})</summary>", "",
                "| status | URL | reason | task | time |", "|---|---|---|---|---|"]
        for t in shown:
            out.append(f"| {_md(t.word)} | {_md(t.url)} | {_md(t.reason) or '–'} | {_code(t.task_id)} | "
                       f"{t.at or '–'} |")
        if len(shown) < len(dest.drifted):
            out += ["", f"{_more(len(dest.drifted) - len(shown))} (the JSON report lists every target)."]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _html(text: str) -> str:
    return _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md(text: str) -> str:
    """Table-cell safe: one line, no raw HTML, pipes escaped."""
    return _html(text).replace("|", "\\|")


def _code(text: str) -> str:
    if not text:
        return "–"
    return f"`{text}`" if "`" not in text and "|" not in text else _md(text)


# -- JSON (machines) ----------------------------------------------------------------------------------
def report_dict(report: Report) -> dict[str, Any]:
    """Shaped like the ``prefetch`` stack output (sets -> destinations), with every drifted target listed."""
    sets: dict[str, dict[str, Any]] = {}
    for dest in report.destinations:
        entry = sets.setdefault(dest.set, {"source": dest.source, "description": report.descriptions.get(dest.set, ""),
                                           "destinations": []})
        entry["destinations"].append({
            "label": dest.label,
            "provider": dest.provider,
            "scope": dict(dest.scope),
            "summary": {
                "total": dest.total,
                "warm": dest.warm,
                "drifted": len(dest.drifted),
                "counts": dict(dest.counts),
                "in_sync": dest.in_sync,
                "verified_at": dest.verified_at or None,
                "digest": dest.digest,
            },
            "drifted": [t.to_dict() for t in dest.drifted],
            "error": dest.error,
        })
    return {
        "version": REPORT_VERSION,
        "stack": report.stack,
        "generated_at": report.generated_at or None,
        "in_sync": report.in_sync,
        "summary": {
            "destinations": len(report.destinations),
            "total": report.total,
            "warm": report.warm,
            "drifted": report.drifted,
            "errors": len(report.errors),
            "text": summary_line(report),
        },
        "sets": sets,
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"table": render_table, "markdown": render_markdown, "json": render_json}
FORMATS: Sequence[str] = tuple(RENDERERS)
