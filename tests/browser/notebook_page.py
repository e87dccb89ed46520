"""One notebook open in JupyterLab, driven like a learner: Run All, wait, look, move every control.

Controls are found generically in every widget output (sliders, dropdowns, checkboxes, toggle
buttons, buttons), never from a hand-kept list. A control counts as working when moving it, or
moving it and then pressing its dashboard's button, changes a figure or an output below it. A
control that is switched off (say, the bias strength while no bias is chosen) is tried again after
the dashboard's choices (dropdowns, checkboxes) have moved on, until every control has had an effect.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

# Console messages that are not the course's fault: images (badges) that need the internet.
OFFLINE = "net::ERR_NAME_NOT_RESOLVED"

STATUS_JS = """() => {
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const prompts = Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))
    .map(e => e.textContent.trim());
  return {status: ind && ind.getAttribute('data-status'),
          running: prompts.filter(p => p.includes('*')).length,
          unrun: prompts.filter(p => !/\\d/.test(p)).length, total: prompts.length};
}"""

# Everything under a widget output that is *output* (figures, Output widgets, HTML widgets), not
# a control's own readout: what must change when a control moves.
SNAPSHOT_JS = r"""(area) => {
  const fnv = s => { let h = 2166136261; for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); } return (h >>> 0).toString(16); };
  const parts = [];
  area.querySelectorAll('.js-plotly-plot').forEach(gd =>
    parts.push('fig:' + fnv(JSON.stringify([gd.data || [], (gd.layout || {}).title || '']))));
  area.querySelectorAll('.widget-output').forEach(o => parts.push('out:' + fnv(o.innerText)));
  area.querySelectorAll('.widget-html-content').forEach(h => parts.push('html:' + fnv(h.innerHTML)));
  return parts.join('|');
}"""

CONTROLS_JS = r"""(area) => {
  const sel = ['.widget-slider', '.widget-dropdown', '.widget-checkbox', '.widget-toggle-buttons',
               'button.widget-toggle-button', 'button.widget-button'].join(',');
  const unknown = ['.widget-select', '.widget-select-multiple', '.widget-radio-box',
                   '.widget-play', '.widget-colorpicker', '.widget-datepicker',
                   '.widget-text input', '.widget-tagsinput'].join(',');
  const found = Array.from(area.querySelectorAll(sel))
    .filter(el => !el.parentElement.closest('.widget-toggle-buttons'));
  return {
    controls: found.map((el, k) => {
      el.setAttribute('data-course-control', String(k));
      const cls = el.classList;
      const kind = cls.contains('widget-slider') ? 'slider'
        : cls.contains('widget-dropdown') ? 'dropdown'
        : cls.contains('widget-checkbox') ? 'checkbox'
        : cls.contains('widget-toggle-buttons') ? 'toggles'
        : cls.contains('widget-toggle-button') ? 'toggle' : 'button';
      const label = Array.from(el.querySelectorAll('.widget-label, .widget-label-basic'))
        .map(e => e.textContent.replace(/\u200b/g, '').trim()).find(t => t)
        || el.textContent.trim();
      return {index: k, kind, label};
    }),
    unknown: Array.from(area.querySelectorAll(unknown)).map(e => e.className),
  };
}"""


@dataclass
class Shot:
    notebook: str
    path: Path
    caption: str


@dataclass
class ControlResult:
    cell: int
    kind: str
    label: str
    changed: bool
    via_button: bool = False
    note: str = ""


@dataclass
class NotebookPage:
    page: object
    name: str
    shots_dir: Path
    shots: list[Shot] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.shots_dir.mkdir(parents=True, exist_ok=True)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda err: self.console.append(f"page error: {err}"))

    def _on_console(self, msg) -> None:
        if msg.type != "error":
            return
        text = msg.text
        if text.startswith("Failed to load resource") and OFFLINE in text:
            url = (msg.location or {}).get("url", "")
            if re.search(r"\.(svg|png|jpe?g|gif)(\?|$)", url) or "badge" in url:
                return
        self.console.append(text)

    # -- opening and running ---------------------------------------------------------------
    def open(self, lab, timeout: float = 180) -> None:
        """Open the notebook and wait until its kernel has started and is idle (asked of the
        server: before the kernel connects, the page's indicator may already read 'idle')."""
        ws = re.sub(r"\W", "", self.name)
        self.page.goto(lab.url(f"lab/workspaces/{ws}/tree/{self.name}.ipynb", reset=""))
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [
                s["kernel"]["execution_state"]
                for s in lab.api("GET", "api/sessions") or []
                if s.get("path", "").endswith(f"{self.name}.ipynb") and s.get("kernel")
            ]
            if states == ["idle"]:
                break
            time.sleep(0.5)
        else:
            raise TimeoutError(f"{self.name}: no idle kernel after {timeout} s")
        self.wait_idle(timeout=timeout, need_all_run=False)

    def status(self) -> dict:
        return self.page.evaluate(STATUS_JS)

    def wait_idle(self, timeout: float = 600, need_all_run: bool = True, quiet: float = 1.5):
        """Wait until the kernel is idle, no cell is queued, and it stayed so for ``quiet`` s."""
        deadline = time.monotonic() + timeout
        calm_since = None
        while time.monotonic() < deadline:
            s = self.status()
            calm = s["status"] == "idle" and not s["running"] and not (need_all_run and s["unrun"])
            now = time.monotonic()
            calm_since = (calm_since or now) if calm else None
            if calm_since and now - calm_since >= quiet:
                return
            time.sleep(0.25)
        raise TimeoutError(f"{self.name}: kernel still busy after {timeout} s: {self.status()}")

    def _click_run_all(self) -> None:
        self.page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        self.page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()

    def run_all(self, timeout: float = 600) -> float:
        start = time.monotonic()
        self._click_run_all()
        # Run All has started once a cell is queued or has run; on a busy machine the first
        # request can be lost while the kernel connects: ask once more.
        for attempt in range(2):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                s = self.status()
                if s["running"] or s["unrun"] < s["total"]:
                    break
                time.sleep(0.25)
            else:
                if attempt == 0:
                    self._click_run_all()
                    continue
            break
        time.sleep(1.0)
        # Done when nothing is queued any more; an error stops Run All with cells left unrun.
        self.wait_idle(timeout=timeout, need_all_run=False)
        self.wait_for_figures()
        unrun = self.status()["unrun"]
        if unrun:
            raise AssertionError(f"{self.name}: Run All stopped with {unrun} code cells not run")
        return time.monotonic() - start

    def wait_for_figures(self, timeout: float = 60) -> None:
        """Plotly draws after the kernel is done: wait until every figure has its axes/table."""
        js = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
                  .filter(gd => !gd._fullLayout).length"""
        deadline = time.monotonic() + timeout
        while self.page.evaluate(js) and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(0.5)

    # -- screenshots -------------------------------------------------------------------------
    def shot(self, locator, filename: str, caption: str) -> None:
        """Screenshot one element whole: the page grows to fit a tall one (JupyterLab scrolls
        inside its own panel, so a taller element would be cut at the window's edge)."""
        path = self.shots_dir / filename
        size = self.page.viewport_size
        box = locator.bounding_box()
        tall = box is not None and box["height"] > size["height"] - 200
        if tall:
            self.page.set_viewport_size(
                {"width": size["width"], "height": min(12000, int(box["height"]) + 300)}
            )
        try:
            locator.scroll_into_view_if_needed()
            locator.screenshot(path=str(path), animations="disabled")
        finally:
            if tall:
                self.page.set_viewport_size(size)
        self.shots.append(Shot(self.name, path, caption))

    def output_cells(self) -> list[int]:
        return self.page.evaluate(
            """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'))
                 .map((c, i) => [i, c.querySelector('.jp-OutputArea-output') ? 1 : 0])
                 .filter(x => x[1]).map(x => x[0])"""
        )

    def cell(self, index: int):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def shoot_outputs(self) -> None:
        for i in self.output_cells():
            area = self.cell(i).locator(".jp-Cell-outputWrapper")
            self.shot(area, f"cell{i:02d}.png", f"cell {i}")

    # -- controls ----------------------------------------------------------------------------
    def widget_areas(self) -> list:
        """(cell index, locator) of every top-level output that holds a rendered widget."""
        cells = self.page.evaluate(
            """() => {
              const cells = Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'));
              const outs = Array.from(document.querySelectorAll(
                  '.jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output'))
                .filter(o => o.querySelector(':scope > .jupyter-widgets'));
              return outs.map((o, k) => { o.setAttribute('data-course-area', String(k));
                                         return cells.indexOf(o.closest('.jp-Cell')); });
            }"""
        )
        return [
            (cell, self.page.locator(f"[data-course-area='{k}']")) for k, cell in enumerate(cells)
        ]

    def snapshot(self, area) -> str:
        return area.evaluate(SNAPSHOT_JS)

    def settle(self, area, timeout: float = 300) -> str:
        """Wait for the kernel to handle a control and the area to stop changing."""
        time.sleep(0.8)
        self.wait_idle(timeout=timeout, need_all_run=False, quiet=1.0)
        self.wait_for_figures()
        last, stable_since = self.snapshot(area), time.monotonic()
        while time.monotonic() - stable_since < 1.0:
            time.sleep(0.3)
            now = self.snapshot(area)
            if now != last:
                last, stable_since = now, time.monotonic()
        return last

    def move(self, control, kind: str) -> str:
        """Move one control to another value; return a note on what was done ('' = could not)."""
        if kind == "slider":  # one step, as a learner nudges it: right, or left at the end
            readout = control.locator(".widget-readout")
            before = readout.inner_text()
            handle = control.locator(".noUi-handle").first
            for key in ("ArrowRight", "ArrowLeft"):
                handle.focus()
                handle.press(key)
                time.sleep(0.3)
                if readout.inner_text() != before:
                    return f"{before} -> {readout.inner_text()}"
            return ""
        if kind == "dropdown":
            select = control.locator("select")
            n = select.evaluate("s => s.options.length")
            if n < 2:
                return ""
            now = select.evaluate("s => s.selectedIndex")
            select.select_option(index=(now + 1) % n)
            return select.evaluate("s => s.options[s.selectedIndex].text")
        if kind == "checkbox":
            control.locator("input").click()
            return "toggled"
        if kind == "toggles":
            other = control.locator("button:not(.mod-active)").first
            other.click()
            return other.inner_text()
        control.click()
        return "clicked"

    def disabled(self, control) -> bool:
        return control.evaluate(
            "el => !!(el.disabled || el.querySelector('[disabled]') || "
            "el.classList.contains('mod-disabled'))"
        )

    def exercise_controls(self, cell: int, area) -> tuple[list[ControlResult], list[str]]:
        """Move every control of one widget area; screenshot every state."""
        found = area.evaluate(CONTROLS_JS)
        problems = [f"cell {cell}: a control the test cannot move: {c}" for c in found["unknown"]]
        controls = found["controls"]
        buttons = [c for c in controls if c["kind"] == "button"]
        choices = [c for c in controls if c["kind"] in ("dropdown", "checkbox", "toggles")]
        self.state = self.settle(area)
        self.shot(area, f"cell{cell:02d}_state00.png", f"cell {cell}: as Run All left it")
        self._n = 0
        results: dict[int, ControlResult] = {}
        for c in buttons:
            results[c["index"]] = self._try(cell, area, c, buttons)
        pending = [c for c in controls if c["kind"] != "button"]
        for round_ in range(4):
            if round_:  # switched-off controls wait for the choices to move on
                for c in choices:
                    if any(not self.disabled(self._loc(area, p)) for p in pending):
                        break
                    if c not in pending:
                        self._try(cell, area, c, buttons)
            for c in list(pending):
                if self.disabled(self._loc(area, c)):
                    continue
                results[c["index"]] = self._try(cell, area, c, buttons)
                if results[c["index"]].changed:
                    pending.remove(c)
            if not pending:
                break
        for c in pending:
            results.setdefault(
                c["index"], ControlResult(cell, c["kind"], c["label"], False, note="never enabled")
            )
        for r in results.values():
            if not r.changed:
                problems.append(
                    f"cell {cell}: moving {r.kind} {r.label!r} ({r.note or 'stuck'}) changed nothing"
                )
        return list(results.values()), problems

    @staticmethod
    def _loc(area, c: dict):
        return area.locator(f"[data-course-control='{c['index']}']")

    def _try(self, cell: int, area, c: dict, buttons: list[dict]) -> ControlResult:
        """Move one control (pressing the dashboard's button if that alone changed nothing)."""
        loc = area.locator(f"[data-course-control='{c['index']}']")
        note = self.move(loc, c["kind"])
        if not note:
            return ControlResult(cell, c["kind"], c["label"], False, note="nowhere to move")
        now = self.settle(area)
        via_button = False
        if now == self.state and buttons and c["kind"] != "button":
            area.locator(f"[data-course-control='{buttons[0]['index']}']").click()
            now, via_button = self.settle(area), True
        changed = now != self.state
        self.state = now
        self._n += 1
        label = re.sub(r"\W+", "-", c["label"]).strip("-")[:24] or c["kind"]
        self.shot(
            area,
            f"cell{cell:02d}_state{self._n:02d}_{label}.png",
            f"cell {cell}: {c['kind']} {c['label']!r} {note}" + (" + button" if via_button else ""),
        )
        return ControlResult(cell, c["kind"], c["label"], changed, via_button, note)
