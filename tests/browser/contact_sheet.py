"""One HTML page with every screenshot of a browser run, notebook by notebook, to review in a minute.

Written by the browser tests at the end of the session (``COURSE_SHOTS``, default
``build/shots/index.html``); each thumbnail links to the full-size image, and each notebook's
section lists what the checks found, so a reviewer sees the defects next to the pictures.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
h2 { margin: 28px 0 6px; border-bottom: 1px solid #ccc; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; width: 260px; }
figure img { width: 260px; height: 180px; object-fit: contain; object-position: top left;
             border: 1px solid #ddd; background: #fff; }
figcaption { font-size: 12px; color: #555; overflow-wrap: anywhere; }
.ok { color: #2a7a2a; } .bad { color: #b00020; }
"""


def write(
    folder: Path,
    shots: Iterable,
    findings: Mapping[str, list[str]],
    timings: Mapping[str, str] | None = None,
) -> Path:
    """Write ``folder/index.html``; ``shots`` have ``notebook``, ``path`` and ``caption``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    by_notebook: dict[str, list] = {}
    for shot in shots:
        by_notebook.setdefault(shot.notebook, []).append(shot)
    names = sorted(set(by_notebook) | set(findings))
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Course screenshots</title>",
        f"<style>{STYLE}</style><h1>Every notebook in JupyterLab, after Run All (FAST)</h1>",
        "<p>" + " · ".join(f"<a href='#{html.escape(n)}'>{html.escape(n)}</a>" for n in names),
    ]
    for name in names:
        found = findings.get(name, [])
        timing = (timings or {}).get(name, "")
        verdict = (
            f"<p class='bad'>{len(found)} problem(s):</p><ul>"
            + "".join(f"<li>{html.escape(p)}</li>" for p in found)
            + "</ul>"
            if found
            else "<p class='ok'>no problems found</p>"
        )
        parts.append(f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>")
        parts.append(f"<p>{html.escape(timing)}</p>{verdict}<div class='grid'>")
        for shot in by_notebook.get(name, []):
            rel = html.escape(os.path.relpath(shot.path, folder))
            parts.append(
                f"<figure><a href='{rel}'><img src='{rel}' loading='lazy'></a>"
                f"<figcaption>{html.escape(shot.caption)}</figcaption></figure>"
            )
        parts.append("</div>")
    page = folder / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    return page
