"""Is a matplotlib figure readable? Checks on its artists after a draw (for the figure tests).

:func:`problems` lists, in words, what a reader would stumble on:

- a legend whose box covers a plotted data point (a line's marker or vertex, a scatter point), a
  bar or cell (a ``Rectangle`` patch of the axes), or a text (a title, a label, an annotation);
- text cut off: a tick label, an axis label, a title, a legend or a text annotation that reaches
  outside the figure;
- a reference line (``axhline``/``axvline``, or any straight line spanning the axes) without a label
  named in a legend;
- an annotation (a bar's value, a label placed by hand) that overlaps another one, or that a reference
  line or a straight segment (a target mark) crosses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

SLACK = 1.0  # pixels: anti-aliasing and rounding


def _legends(fig: Figure) -> list[Legend]:
    out = list(fig.legends)
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            out.append(leg)
    return out


def _inside(box: Bbox, outer: Bbox) -> bool:
    return (
        box.x0 >= outer.x0 - SLACK
        and box.y0 >= outer.y0 - SLACK
        and box.x1 <= outer.x1 + SLACK
        and box.y1 <= outer.y1 + SLACK
    )


def _shrunk(box: Bbox) -> Bbox:
    return Bbox.from_extents(box.x0 + SLACK, box.y0 + SLACK, box.x1 - SLACK, box.y1 - SLACK)


def _is_reference(line: Line2D) -> bool:
    """``axhline``/``axvline`` (one coordinate in axes units, spanning 0..1)."""
    x, y = (np.asarray(v, dtype=float) for v in line.get_data())
    spans = {0.0, 1.0} in (set(x.tolist()), set(y.tolist()))
    return x.size == 2 and y.size == 2 and spans and line.get_transform() is not line.axes.transData


def _data_points(line: Line2D) -> np.ndarray:
    """Display coordinates of a data line's vertices inside its axes (clipped points are not drawn)."""
    x, y = (np.asarray(v, dtype=float) for v in line.get_data())
    if x.size == 0:
        return np.zeros((0, 2))
    xy = line.get_transform().transform(np.column_stack([x, y]))
    box = line.axes.bbox
    keep = np.isfinite(xy).all(axis=1)
    xy = xy[keep]
    inside = (xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1) & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)
    return xy[inside]


def _tick_labels(axis: Any) -> list[Text]:
    """The tick labels matplotlib draws: those of ticks within the view limits."""
    lo, hi = sorted(float(v) for v in axis.get_view_interval())
    eps = (hi - lo) * 1e-9
    out = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        if lo - eps <= tick.get_loc() <= hi + eps:
            out += [lab for lab in (tick.label1, tick.label2) if lab.get_visible()]
    return out


def problems(fig: Figure) -> list[str]:
    """What is unreadable in ``fig`` (empty when nothing is)."""
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    out: list[str] = []
    page = fig.bbox
    legends = _legends(fig)
    legend_boxes = [(leg, leg.get_window_extent(renderer)) for leg in legends if leg.get_visible()]
    legend_texts = {t.get_text() for leg in legends for t in leg.get_texts()}
    for leg, box in legend_boxes:
        if not _inside(box, page):
            out.append(f"legend {[t.get_text() for t in leg.get_texts()][:3]} is cut off at {box.extents}")
    for ax in fig.axes:
        title = ax.get_title() or ax.get_title(loc="left") or ax.get_title(loc="right") or "axes"
        for line in ax.get_lines():
            if not line.get_visible():
                continue
            if _is_reference(line):
                label = line.get_label()
                if label.startswith("_") or label not in legend_texts:
                    out.append(f"{title}: reference line {line.get_data()} has no caption in a legend")
                continue
            pts = _data_points(line)
            for _, box in legend_boxes:
                inner = _shrunk(box)
                hit = [(float(x), float(y)) for x, y in pts if inner.contains(x, y)]
                if hit:
                    out.append(f"{title}: legend covers data point(s) of {line.get_label()!r} at {hit[:2]}")
        for coll in ax.collections:
            offsets = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
            for _, box in legend_boxes:
                inner = _shrunk(box)
                if any(inner.contains(float(x), float(y)) for x, y in offsets):
                    out.append(f"{title}: legend covers scatter points")
        for patch in ax.patches:
            if not isinstance(patch, Rectangle) or not patch.get_visible():
                continue
            pbox = patch.get_window_extent(renderer)
            if pbox.width <= SLACK and pbox.height <= SLACK:
                continue
            if any(_shrunk(box).overlaps(_shrunk(pbox)) for _, box in legend_boxes):
                out.append(f"{title}: legend covers a bar or cell at {pbox.extents}")
        texts: list[Any] = []
        if ax.axison:  # ax.axis("off") draws no ticks nor axis labels
            texts += [*_tick_labels(ax.xaxis), *_tick_labels(ax.yaxis), ax.xaxis.label, ax.yaxis.label]
        texts += [t for t in ax.get_children() if isinstance(t, Text)]  # titles and annotations
        for text in texts:
            if not text.get_visible() or not text.get_text().strip():
                continue
            tbox = text.get_window_extent(renderer)
            if not _inside(tbox, page):
                out.append(f"{title}: text {text.get_text()!r} is cut off at {tbox.extents}")
            if any(_shrunk(box).overlaps(_shrunk(tbox)) for _, box in legend_boxes):
                out.append(f"{title}: a legend covers the text {text.get_text()!r}")
        notes = [t for t in ax.texts if t.get_visible() and t.get_text().strip()]
        boxes = [_shrunk(t.get_window_extent(renderer)) for t in notes]
        for i, a in enumerate(boxes):
            for j in range(i + 1, len(boxes)):
                if a.overlaps(boxes[j]):
                    out.append(f"{title}: texts {notes[i].get_text()!r} and {notes[j].get_text()!r} overlap")
        straight = [ln for ln in ax.get_lines() if ln.get_visible() and len(ln.get_xdata()) == 2]
        for line in straight:
            lbox = line.get_window_extent(renderer)
            for note, box in zip(notes, boxes):
                if box.overlaps(lbox):
                    out.append(f"{title}: line {line.get_label()!r} crosses the text {note.get_text()!r}")
    for text in fig.texts:
        shown = text.get_visible() and text.get_text().strip()
        if shown and not _inside(text.get_window_extent(renderer), page):
            out.append(f"figure text {text.get_text()!r} is cut off")
    return out


def unlabelled_bars(fig: Figure) -> list[str]:
    """Horizontal bars with no text at their height (their value should be written next to them)."""
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        centres = [t.get_window_extent(renderer) for t in ax.texts if t.get_text().strip()]
        for bar in bars:
            box = bar.get_window_extent(renderer)
            mid = (box.y0 + box.y1) / 2
            if not any(c.y0 - SLACK <= mid <= c.y1 + SLACK for c in centres):
                out.append(f"{ax.get_title()}: bar at y={mid:.0f} px has no value written")
    return out
