"""The benchmark figures are readable (issue 20, item 3): drawn from a small fake report, no legend
covers data, every reference line is captioned in a legend, every bar has its value written, and no
text is cut off. The checks read matplotlib's artists (tests/helpers/figure_checks.py)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ lives at the repository root, outside the installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import plots  # noqa: E402
from tests.helpers.figure_checks import problems, unlabelled_bars  # noqa: E402

# the reader names of benchmarks/cases/video.py
FRAMES = "LeRobotFrames, order='frames', video_threads=1"
BLOCKS8 = "LeRobotFrames, order='blocks' (block_size=8), video_threads=1"
BLOCKS32 = "LeRobotFrames, order='blocks' (block_size=32), video_threads=1"
BLOCKS32_U8 = "LeRobotFrames, order='blocks' (block_size=32), video_threads=1, return_uint8=True"
FRAMES_THREADS = "LeRobotFrames, order='frames', video_threads=None (one per camera)"
BASELINE = "LeRobot-style per item, per camera (RandomSampler)"


def _fullepoch() -> list[dict]:
    rows = []
    for n in (10**6, 10**7):
        for m, t in (("feistel/frames", 2e-8), ("randperm/frames", 3e-8), ("materialized", 7e-8)):
            rows.append({"N": n, "E": 10**4, "method": m, "median_s": t * n, "estimated": False})
        for m, t, est in (
            ("torch.randperm", 2e-8, False),
            ("DistributedSampler list", 5e-8, False),
            ("Loader(SamplerWrapper(RandomSampler))", 4e-7, True),
            ("LeRobot-style per-item", 2e-6, True),
            ("Grain IndexSampler", 3.5e-5, True),
        ):
            rows.append({"N": n, "E": None, "method": m, "median_s": t * n, "estimated": est and n > 10**6})
    return rows


REPORT = {
    "sections": {
        "fullepoch": {"rows": _fullepoch()},
        "iteration": {
            "rows": [
                {"N": 10**6, "method": "for i in sampler (feistel)", "items_per_s": 15.2e6},
                {"N": 10**6, "method": "for i in RandomSampler", "items_per_s": 7.5e6},
                {"N": 10**6, "method": "for i in Grain IndexSampler[i]", "items_per_s": 0.03e6},
                {"N": 10**6, "method": "for i in Loader(EpisodeSamplerNode) (feistel)", "items_per_s": 2.6e6},
                {  # the longest label of a real report
                    "N": 10**6,
                    "method": "for i in Loader(SamplerWrapper(RandomSampler))",
                    "items_per_s": 2.1e6,
                },
            ]
        },
        "restore": {
            "rows": [
                {
                    "N": n,
                    "E": 1000,
                    "fraction": f,
                    "permutation": "feistel",
                    "sampler_restore_s": 6e-5 + f * 1e-5,
                    "epoch_start_s": 5e-5,
                }
                for n in (10**3, 10**6, 10**9)
                for f in (0.0, 0.5, 0.999)
            ]
        },
        "memory": {
            "rows": [
                {
                    "N": n,
                    "E": 10**6,
                    "layout_bytes": 24_000_000,
                    "tracemalloc_peak_bytes": 16_000_000,
                    "rss_peak_bytes": 18_000_000,
                    "from_bounds_peak_bytes": 32_000_000,
                }
                for n in (10**6, 10**9)
            ],
            "iterated": 1000,
        },
        "peers_restore": {
            "rows": [
                {"N": n, "E": 1000, "method": m, "median_s": t}
                for n in (10**6, 10**8)
                for m, t in (
                    ("ours built", 2e-4),
                    ("ours construct", 1e-3),
                    ("Grain built", 5e-4),
                    ("torch RandomSampler construct", 3e-2),
                )
            ]
        },
        "e2e": {
            "rows": [
                {"batch_size": 32, "frames": 6001, "method": m, "samples_per_s": v}
                for m, v in (
                    ("Loader(Prefetcher(Mapper(EpisodeSamplerNode, get_batch)))", 69e3),
                    ("Loader(Mapper(EpisodeSamplerNode, __getitems__ + collate))", 50e3),
                    ("DataLoader(batch_size, RandomSampler, num_workers=0)", 46e3),
                    ("same as the get_batch row, order='blocks' (block_size=16)", 98e3),
                )
            ]
        },
        "video": {
            "limit": 940.0,
            "limit_uint8": 1400.0,
            "batch_size": 32,
            "cameras": {"observation.images.small": [96, 96], "observation.images.large": [240, 320]},
            "random_same_episode_share": 0.06,
            "rows": [
                {
                    "workers": w,
                    "method": m,
                    "samples_per_s": f * 940,
                    "fraction_of_limit": f,
                    "limit": "uint8" if "uint8" in m else "float32",
                }
                for w, m, f in (
                    (0, BASELINE, 0.12),
                    (0, FRAMES, 0.56),
                    (0, BLOCKS8, 0.78),
                    (0, BLOCKS32, 0.88),
                    (0, BLOCKS32_U8, 0.93),
                    (0, FRAMES_THREADS, 0.71),
                    (2, FRAMES, 1.05),
                )
            ],
            "sweep": [
                {
                    "block_size": b,
                    "us_per_sample": 2000 / b**0.3,
                    "frames_decoded_per_sample": 3 / b**0.2,
                    "same_episode_share": min(1.0, 0.06 + b / 40),
                }
                for b in (1, 2, 4, 8, 16, 32)
            ],
        },
    }
}
THRESHOLDS = {FRAMES: 0.60, BLOCKS8: 0.85, BLOCKS32: 0.95}


@pytest.fixture(scope="module")
def drawn():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "_video_thresholds", lambda: dict(THRESHOLDS))
        figs = plots.figures(copy.deepcopy(REPORT))
    yield figs
    for fig in figs.values():
        plt.close(fig)


@pytest.mark.slow  # draws every figure (seconds on a loaded machine)
def test_every_figure_is_drawn(drawn) -> None:
    assert set(drawn) == set(plots.FIGURES)


@pytest.mark.slow  # draws every figure (seconds on a loaded machine)
@pytest.mark.parametrize("name", sorted(plots.FIGURES))
def test_figure_is_readable(drawn, name) -> None:
    assert problems(drawn[name]) == []


@pytest.mark.slow  # draws every figure (seconds on a loaded machine)
@pytest.mark.parametrize("name", ["perf_iteration.png", "perf_e2e.png", "perf_video_limit.png"])
def test_every_bar_has_its_value_written(drawn, name) -> None:
    fig = drawn[name]
    assert unlabelled_bars(fig) == []
    texts = [t.get_text() for t in fig.axes[0].texts]
    if name == "perf_iteration.png":
        assert "0.03" in texts  # Grain's bar is too short to see: its value is written
    if name == "perf_video_limit.png":
        assert texts == ["0.12", "0.56", "0.78", "0.88", "0.93", "0.71", "1.05"]


@pytest.mark.slow  # draws every figure (seconds on a loaded machine)
def test_video_limit_figure_draws_the_limit_and_the_targets(drawn) -> None:
    fig = drawn["perf_video_limit.png"]
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [
        "decode limit = 1.0 (940 samples/s, one thread)",
        "target for this reader (num_workers=0)",
    ]
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[1] == "ours, frames, 1 thread, 0 workers"
    assert ticks[4] == "ours, blocks of 32, 1 thread, uint8 (/ uint8 limit), 0 workers"
    assert ticks[5] == "ours, frames, a thread per camera, 0 workers"
    marks = sorted(
        (round(line.get_xdata()[0], 2), round(sum(line.get_ydata()) / 2))
        for line in ax.get_lines()
        if line.get_color() == plots.TARGET
    )
    assert marks == [(0.6, 1), (0.85, 2), (0.95, 3)]  # each target on its reader's bar (row index)


def test_video_limit_figure_is_skipped_without_the_limit() -> None:
    old = copy.deepcopy(REPORT["sections"]["video"])
    del old["limit"]
    assert plots.fig_video_limit(old) is None
    for row in old["rows"]:
        del row["fraction_of_limit"]
    old["limit"] = 940.0
    assert plots.fig_video_limit(old) is None


def test_the_checks_catch_a_legend_on_data_a_bare_reference_line_and_a_cut_label() -> None:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0, 1, 2], "o-", label="data")
    ax.plot([0, 1, 2], [1, 1, 1], "s", label="more data")
    ax.legend(loc="center")
    ax.axhline(0.5)
    ax.set_yticks([0, 1, 2], ["a very long tick label that cannot fit in three inches", "b", "c"])
    ax.text(1.0, 0.5, "a value under the line")
    found = problems(fig)
    plt.close(fig)
    assert any("legend covers data point" in p for p in found)
    assert any("reference line" in p for p in found)
    assert any("is cut off" in p for p in found)
    assert any("crosses the text 'a value under the line'" in p for p in found)


@pytest.mark.slow  # draws every figure (seconds on a loaded machine)
def test_plots_writes_every_png(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(plots, "_video_thresholds", lambda: dict(THRESHOLDS))
    written = plots.plots(copy.deepcopy(REPORT), tmp_path)
    assert sorted(p.name for p in written) == sorted(plots.FIGURES)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
