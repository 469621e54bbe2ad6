"""The concept figures of docs/concepts.md are readable (issue 20, item 3): no legend covers a cell or
a data point, every reference line is captioned, no text is cut off (tests/helpers/figure_checks.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")  # the "docs" extra
import matplotlib.pyplot as plt  # noqa: E402

from tests.helpers.figure_checks import problems  # noqa: E402

pytestmark = pytest.mark.slow  # draws every concept figure (seconds on a loaded machine)

RENDER = Path(__file__).resolve().parents[2] / "docs" / "render_figures.py"


@pytest.fixture(scope="module")
def concept_figures():
    spec = importlib.util.spec_from_file_location("render_figures", RENDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    drawn = {}

    def keep(fig, out, name):  # instead of saving and closing: keep the figure to inspect it
        drawn[name] = fig
        return Path(out) / name

    module._save = keep
    with matplotlib.rc_context(module.RC):  # as `python docs/render_figures.py` draws them
        for draw in module.FIGURES:
            draw(Path("unused"))
    yield drawn
    for fig in drawn.values():
        plt.close(fig)


def test_every_concept_figure_is_drawn(concept_figures) -> None:
    assert sorted(concept_figures) == sorted(
        [
            "concept_layout.png",
            "concept_windows.png",
            "concept_orders.png",
            "concept_sharding.png",
            "concept_elastic.png",
        ]
    )


@pytest.mark.parametrize(
    "name",
    [
        "concept_layout.png",
        "concept_windows.png",
        "concept_orders.png",
        "concept_sharding.png",
        "concept_elastic.png",
    ],
)
def test_concept_figure_is_readable(concept_figures, name) -> None:
    assert problems(concept_figures[name]) == []
