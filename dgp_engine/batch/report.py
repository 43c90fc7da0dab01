"""What a batch job says at the end: a summary table (terminal) and a contact sheet
(``OUT_DIR/contact-sheet.html``: failures first with their reasons, then every done
picture as a before/after pair of thumbnails linking to the output)."""

from __future__ import annotations

import html
import os
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..files.photos import write_atomic
from . import journal as J
from .plan import CONTACT_SHEET, WORK_DIR, BatchSettings


@dataclass
class RunStats:
    """Where one run of the driver spent its time (:class:`.job.BatchJob` fills it in)."""

    started: float = 0.0
    finished: float = 0.0
    done: int = 0
    failed: int = 0
    worker_seconds: float = 0.0  # compute time reported by workers (done items)
    item_wall: float = 0.0  # submit → result on the driver (done items)
    journal_seconds: float = 0.0  # time in journal writes
    io_seconds: float = 0.0  # reading inputs, writing outputs and thumbnails
    journal_ops: int = 0


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 90:
        return f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def summary_table(
    rows: list[J.ItemRow], *, stats: RunStats | None = None, max_failures: int = 20
) -> str:
    """Counts per status, time per picture, and the failures with their reasons."""
    counts = dict.fromkeys(J.STATUSES, 0)
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    seconds = [r.seconds for r in rows if r.status == J.DONE and r.seconds is not None]
    lines = ["status     pictures", "---------  --------"]
    lines += [f"{s:<9}  {counts[s]:>8}" for s in J.STATUSES if counts[s] or s == J.DONE]
    lines.append(f"{'total':<9}  {len(rows):>8}")
    if seconds:
        mean = sum(seconds) / len(seconds)
        lines.append(f"\nmean compute time per picture: {_fmt_seconds(mean)}")
    if stats is not None and stats.done:
        run_wall = max(1e-9, stats.finished - stats.started)
        lines.append(
            f"this run: {stats.done} done in {_fmt_seconds(run_wall)} "
            f"({60 * stats.done / run_wall:.1f} pictures/min); driver per picture: "
            f"journal {stats.journal_seconds / stats.done:.4f} s, files "
            f"{stats.io_seconds / stats.done:.4f} s, dispatch + transfer "
            f"{max(0.0, stats.item_wall - stats.worker_seconds) / stats.done:.3f} s"
        )
    for status, more in ((J.FAILED, " (see the contact sheet)"), (J.SKIPPED, "")):
        listed = [r for r in rows if r.status == status]
        if listed:
            lines.append(f"\n{status} ({len(listed)}):")
            lines += [f"  {J.shown_name(r.rel)}: {r.reason}" for r in listed[:max_failures]]
            if len(listed) > max_failures:
                lines.append(f"  … and {len(listed) - max_failures} more{more}")
    return "\n".join(lines)


_CSS = """
body{font-family:sans-serif;margin:1.5em;background:#f6f6f6;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;padding:6px;border-radius:4px;box-shadow:0 1px 2px #0002;width:336px}
.card img{width:160px;height:160px;object-fit:contain;background:#eee}
.name{font-size:.85em;word-break:break-all}.failed{color:#a00}
"""


def write_contact_sheet(out_dir: Path, rows: list[J.ItemRow], settings: BatchSettings) -> Path:
    """``OUT_DIR/contact-sheet.html`` for the journal's ``rows`` (written atomically)."""
    out_dir = Path(out_dir)
    thumbs = f"{WORK_DIR}/thumbs"

    def thumb(row: J.ItemRow, which: str) -> str:
        path = out_dir / WORK_DIR / "thumbs" / f"{row.id}-{which}.jpg"
        if not path.is_file():
            return ""
        return (
            f'<img loading="lazy" alt="{which}" '
            f'src="{html.escape(f"{thumbs}/{row.id}-{which}.jpg")}">'
        )

    counts = dict.fromkeys(J.STATUSES, 0)
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1

    def e(text: str) -> str:  # names that are not UTF-8 shown with U+FFFD
        return html.escape(J.shown_name(text))

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>DGP batch: {e(settings.task)} of {e(str(settings.input_dir))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>DGP batch — {e(settings.task)} of {e(str(settings.input_dir))}</h1>",
        f"<p>Model {e(str(settings.model))}, class {e(str(settings.class_spec))}, seed "
        f"{settings.seed}. Written {time.strftime('%Y-%m-%d %H:%M:%S')}.</p>",
        "<table><tr>"
        + "".join(f"<th>{s}</th>" for s in J.STATUSES)
        + "</tr><tr>"
        + "".join(f"<td>{counts[s]}</td>" for s in J.STATUSES)
        + "</tr></table>",
    ]
    failed = [r for r in rows if r.status in (J.FAILED, J.SKIPPED)]
    if failed:
        parts.append(
            "<h2>Failed and skipped</h2><table><tr><th>picture</th><th>status</th>"
            "<th>reason</th></tr>"
        )
        parts += [
            f"<tr><td>{e(r.rel)}</td><td class='failed'>{r.status}</td>"
            f"<td>{e(r.reason or '')}</td></tr>"
            for r in failed
        ]
        parts.append("</table>")
    done = [r for r in rows if r.status == J.DONE]
    parts.append(f"<h2>Done ({len(done)}): before / after</h2><div class='grid'>")
    for r in done:
        secs = f" · {r.seconds:.1f} s" if r.seconds is not None else ""
        cls = f" · class {r.class_id}" if r.class_id is not None else ""
        href = html.escape(urllib.parse.quote(os.fsencode(r.output), safe="/"))
        parts.append(
            f"<div class='card'>{thumb(r, 'in')} <a href='{href}'>"
            f"{thumb(r, 'out')}</a><div class='name'>{e(r.rel)}{secs}{cls}</div>"
            "</div>"
        )
    parts.append("</div>")
    pending = [r for r in rows if r.status in (J.PENDING, J.RUNNING)]
    if pending:
        parts.append(
            f"<h2>Not done yet ({len(pending)})</h2><p>Run the same command again "
            "to resume.</p><ul>"
        )
        parts += [f"<li>{e(r.rel)}</li>" for r in pending[:200]]
        parts.append("</ul>")
    parts.append("</body></html>")
    path = out_dir / CONTACT_SHEET
    text = "\n".join(parts).encode("utf-8")
    write_atomic(path, lambda f: f.write(text))
    return path
