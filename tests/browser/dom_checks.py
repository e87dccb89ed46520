"""What a learner sees, read from JupyterLab's DOM after Run All, and the rules it must follow.

``page_report(page)`` runs one script in the page and returns plain data: every cell's outputs,
every plotly figure (axes, title, rendered text), every typeset formula and every widget label.
``problems(report)`` turns it into human-readable defects, grouped by kind; each test asserts one
kind is empty.
Each rule is generic (it knows no notebook), so a new notebook or figure is checked the same way.
"""

from __future__ import annotations

import re

MAX_LOG_DECADES = 12
# A float32 value printed as a Python float: 1.2000000476837158, 0.800000011920929.
FLOAT_NOISE = re.compile(r"\d\.\d*?(?:0{6,}|9{6,})\d+")
# A typeset formula that starts with a number (MathML <mn>) is a currency amount ($5.6M) read as
# TeX; the course's formulas start with a symbol, an operator or a fraction.
# A string plotly.js would hand to MathJax (its FIND_TEX rule): two $ signs.
PLOTLY_TEX = re.compile(r"\$[^$]*\$")
WIDGET_FAILED = re.compile(r"Error displaying widget|Loading widget")
WIDGET_REPR = re.compile(r"^(VBox|HBox|Box|interactive|Output|Tab|Accordion|GridBox)\(")

PAGE_REPORT_JS = r"""
() => {
  const cells = Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'));
  const cellOf = el => cells.indexOf(el.closest('.jp-Cell'));
  const rect = el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const topOutputs = Array.from(document.querySelectorAll('.jp-Cell .jp-OutputArea-output'))
    .filter(o => !o.parentElement.closest('.jp-OutputArea-output'));
  const outputs = topOutputs.map(o => ({
    cell: cellOf(o),
    mime: o.getAttribute('data-mime-type') || '',
    text: o.innerText.slice(0, 4000),
    widget: !!o.querySelector(':scope > .jupyter-widgets') && visible(o),
  }));
  const stderr = Array.from(document.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
    .map(o => ({cell: cellOf(o), text: o.innerText.slice(0, 600)}));
  const bars = Array.from(document.querySelectorAll(
      '.jp-OutputArea-output .widget-hprogress, .jp-OutputArea-output .widget-vprogress'))
    .filter(visible).map(b => ({cell: cellOf(b),
      text: (b.closest('.widget-hbox') || b).innerText.slice(0, 200)}));
  const fnv = s => { let h = 2166136261; for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); } return (h >>> 0).toString(16); };
  const titleText = t => (t && (typeof t === 'string' ? t : t.text)) || '';
  const figures = Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
    const fl = gd._fullLayout || {}, lay = gd.layout || {};
    const axes = Object.keys(fl).filter(k => /^[xy]axis\d*$/.test(k)).map(k => ({
      name: k, type: fl[k].type, range: fl[k].range, title: titleText(fl[k].title)}));
    const strings = [titleText(lay.title)];
    axes.forEach(a => strings.push(a.title));
    (lay.annotations || []).forEach(a => strings.push(a.text || ''));
    (gd.data || []).forEach(t => {
      strings.push(t.name || '');
      [t.text, t.header && t.header.values, t.cells && t.cells.values].forEach(v => {
        if (v) strings.push(...[v].flat(3).map(x => String(x))); });
    });
    const texts = Array.from(gd.querySelectorAll('text')).filter(visible)
      .map(t => t.textContent.trim());
    const tickText = Array.from(gd.querySelectorAll('text')).filter(t => visible(t)
      && /^[xy]\d*tick$/.test((t.parentElement.getAttribute('class') || '').split(' ')[0]));
    const legend = gd.querySelector('.legend .bg');
    const labels = Array.from(gd.querySelectorAll('.textpoint text, .annotation-text'))
      .filter(t => visible(t) && t.textContent.trim());
    const gtitle = gd.querySelector('.gtitle');
    return {
      cell: cellOf(gd),
      in_widget: !!gd.closest('.jupyter-widgets'),
      title: titleText(lay.title),
      title_shown: !!(gtitle && gtitle.textContent.trim() && visible(gtitle)),
      axes: axes,
      strings: strings.filter(s => s),
      texts: texts,
      legend: legend && visible(legend) ? rect(legend) : null,
      ticks: tickText.map(t => [t.textContent, rect(t)]),
      labels: labels.map(t => [t.textContent, rect(t)]),
      signature: JSON.stringify([(gd.data || []).map(t => [t.type, t.name]),
                                 axes.map(a => a.title)]),
      data_hash: fnv(JSON.stringify(gd.data || [])),
    };
  });
  // A formula whose first symbol is a number: "$5.6M ... $2" became one run-together formula.
  const firstSymbol = m => {
    let e = m.querySelector('mjx-assistive-mml math');
    e = e && e.firstElementChild;
    while (e && e.tagName.toLowerCase() === 'mrow') e = e.firstElementChild;
    return e ? e.tagName.toLowerCase() : '';
  };
  const formulas = Array.from(document.querySelectorAll('mjx-container'))
    .filter(m => !m.closest('.js-plotly-plot'))
    .map(m => ({cell: cellOf(m), first: firstSymbol(m),
                text: (m.querySelector('mjx-assistive-mml') || m).textContent}));
  const canvas = document.createElement('canvas').getContext('2d');
  const cut = [];
  document.querySelectorAll('.jp-OutputArea-output .widget-label, .jp-OutputArea-output .widget-button')
    .forEach(el => { if (visible(el) && el.scrollWidth > el.clientWidth + 1)
      cut.push({cell: cellOf(el), text: el.textContent}); });
  document.querySelectorAll('.jp-OutputArea-output .widget-dropdown select').forEach(sel => {
    if (!visible(sel)) return;
    const cs = getComputedStyle(sel);
    canvas.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    Array.from(sel.options).forEach(o => {
      // the text, its padding and the arrow must fit in the box
      if (canvas.measureText(o.text).width + 28 > sel.clientWidth)
        cut.push({cell: cellOf(sel), text: o.text});
    });
  });
  // the section (## heading) each cell belongs to
  let section = 0;
  const sections = cells.map(c => (section += c.classList.contains('jp-MarkdownCell')
    && c.querySelector('.jp-RenderedMarkdown h1, .jp-RenderedMarkdown h2') ? 1 : 0));
  return {n_cells: cells.length, sections, outputs, stderr, bars, figures, formulas, cut};
}
"""


def page_report(page) -> dict:
    return page.evaluate(PAGE_REPORT_JS)


def _overlap(a, b) -> float:
    """Intersection area of two [left, top, right, bottom] boxes over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller if smaller > 0 else 0.0


def figure_problems(fig: dict) -> dict[str, list[str]]:
    """One figure's broken rules, by kind: ``axes``, ``tex`` and ``text``."""
    where = f"cell {fig['cell']}, figure {fig['title'][:60]!r}"
    out: dict[str, list[str]] = {"axes": [], "tex": [], "text": []}
    for ax in fig["axes"]:
        if ax["type"] == "log" and ax["range"]:
            decades = abs(ax["range"][1] - ax["range"][0])
            if decades > MAX_LOG_DECADES:
                out["axes"].append(f"{where}: log {ax['name']} spans {decades:.0f} decades")
    if fig["title"] and not fig["title_shown"]:
        out["axes"].append(f"{where}: the title is not drawn")
    for s in fig["strings"]:
        if PLOTLY_TEX.search(s):
            out["tex"].append(f"{where}: {s[:60]!r} has two $ signs; plotly typesets it as TeX")
    for t in fig["texts"]:
        if t in ("null", "undefined", "NaN"):
            out["text"].append(f"{where}: shows the text {t!r}")
            break
    if fig["legend"]:
        for text, box in fig["ticks"]:
            if _overlap(fig["legend"], box) > 0.2:
                out["text"].append(f"{where}: the legend covers the tick label {text!r}")
                break
    labels = fig["labels"]
    for i, (ta, a) in enumerate(labels):
        for tb, b in labels[i + 1 :]:
            if _overlap(a, b) > 0.3:
                out["text"].append(f"{where}: text labels {ta!r} and {tb!r} overlap")
    return out


KINDS = ("noise", "widgets", "axes", "tex", "text", "repeats")


def problems(report: dict) -> dict[str, list[str]]:
    """Every rule broken on the page, one line each, grouped by kind (``KINDS``)."""
    out: dict[str, list[str]] = {k: [] for k in KINDS}
    out["noise"] = [
        f"cell {e['cell']}: stderr/error output: {e['text'][:300]!r}" for e in report["stderr"]
    ] + [f"cell {b['cell']}: a progress bar left on screen: {b['text']!r}" for b in report["bars"]]
    for o in report["outputs"]:
        if not o["widget"] and WIDGET_FAILED.search(o["text"]):
            out["widgets"].append(f"cell {o['cell']}: a widget did not render: {o['text'][:120]!r}")
        if o["mime"] == "text/plain" and WIDGET_REPR.match(o["text"]):
            out["widgets"].append(
                f"cell {o['cell']}: a widget is shown as text: {o['text'][:80]!r}"
            )
        for m in FLOAT_NOISE.finditer(o["text"]):
            out["text"].append(f"cell {o['cell']}: float32 noise printed: {m.group(0)!r}")
    for f in report["formulas"]:
        if f["first"] == "mn":
            out["tex"].append(f"cell {f['cell']}: a $ amount is typeset as TeX: {f['text'][:80]!r}")
    for c in report["cut"]:
        out["text"].append(f"cell {c['cell']}: a control's label is cut off: {c['text']!r}")
    for fig in report["figures"]:
        for kind, lines in figure_problems(fig).items():
            out[kind].extend(lines)
    out["repeats"] = repeated_figures(report["figures"], report["sections"])
    return out


def repeated_figures(figures: list[dict], sections: list[int]) -> list[str]:
    """The same chart twice: drawn again below itself (a live plot that stacks instead of
    redrawing), or a copy shown in the same section as the live dashboard or figure it copies.
    (A later section may show a chart again on purpose, e.g. a calculator that starts where an
    earlier derivation ended.)"""
    out = []
    by_cell: dict[int, list[dict]] = {}
    for fig in figures:
        by_cell.setdefault(fig["cell"], []).append(fig)
    for cell, figs in by_cell.items():
        # the same chart at another step or setting: equal but for the numbers in its title
        sigs = [(re.sub(r"[-+]?\d[\d.,]*", "#", f["title"]), f["signature"]) for f in figs]
        for sig in dict.fromkeys(sigs):
            if sigs.count(sig) > 1:
                out.append(f"cell {cell}: {sigs.count(sig)} copies of figure {sig[0][:60]!r}")
    seen: dict[tuple, dict] = {}
    for fig in figures:
        key = (fig["data_hash"], sections[fig["cell"]] if 0 <= fig["cell"] < len(sections) else -1)
        first = seen.setdefault(key, fig)
        if first is not fig and first["cell"] != fig["cell"]:
            out.append(
                f"cells {first['cell']} and {fig['cell']}: the same figure twice in one section "
                f"({fig['title'][:60]!r})"
            )
    return out
