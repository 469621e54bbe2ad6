"""The startup, PSS and overhead cases and the real-LeRobot runner, at tiny sizes (a few seconds: each
fresh process imports torch). Expectations come from an independent reference (the sampler's own
epoch order listed, plain arithmetic on made-up rows), never from timings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.cases import overhead, pss, startup  # noqa: E402
from benchmarks.config import make_config  # noqa: E402
from benchmarks.datasets import PARQUET_SIZES, parquet_dataset  # noqa: E402
from benchmarks.peers import lerobot_real  # noqa: E402
from benchmarks.timing import Log  # noqa: E402

QUIET = Log(True)


def test_startup_smoke_runs_ours_fresh_and_resumed_from_the_right_sample() -> None:
    from episode_sampler import EpisodeAwareSampler
    from episode_sampler.lerobot import read_episode_index

    sec = startup.bench_startup(make_config("smoke"), QUIET)
    rows = {(r["method"], r["case"]): r for r in sec["rows"]}
    assert set(rows) == {("ours", "fresh"), ("ours", "resumed")}  # no real LeRobot in --smoke
    assert sec["lerobot_note"]
    root = parquet_dataset(PARQUET_SIZES["smoke"], QUIET)
    order = list(iter(EpisodeAwareSampler.from_index(read_episode_index(root), shuffle=True, seed=0)))
    assert rows[("ours", "fresh")]["first_index"] == [order[0]]
    assert rows[("ours", "resumed")]["first_index"] == [order[sec["resume_step"] * startup.BATCH]]
    for r in rows.values():
        assert r["first_batch_s"] > r["import_s"] > 0 and r["setup_s"] >= r["dataset_s"] > 0
    assert sec["ours_import_over_torch_s"] > 0
    names = [t[0] for t in startup.startup_targets(sec)]
    assert names == ["startup_first_batch_vs_lerobot", "startup_setup_vs_lerobot", "import_over_torch"]
    assert [t[2] for t in startup.startup_targets(sec)][:2] == [None, None]
    assert any("| ours | resumed |" in line for line in startup.startup_markdown(sec))


def test_startup_targets_take_the_worst_of_fresh_and_resumed() -> None:
    def row(method: str, case: str, first: float, setup: float) -> dict:
        return {"method": method, "case": case, "first_batch_s": first, "setup_s": setup}

    sec = {
        "rows": [
            row("ours", "fresh", 2.0, 0.1),
            row("LeRobot", "fresh", 8.0, 0.4),
            row("ours", "resumed", 3.0, 0.3),
            row("LeRobot", "resumed", 6.0, 0.2),
        ],
        "frames": 10,
        "episodes": 2,
        "files": 1,
        "batch_size": 32,
        "ours_import_over_torch_s": 0.2,
    }
    values = {t[0]: t[2] for t in startup.startup_targets(sec)}
    assert values == pytest.approx(
        {
            "startup_first_batch_vs_lerobot": 0.5,  # max(2/8, 3/6)
            "startup_setup_vs_lerobot": 1.5,  # max(0.1/0.4, 0.3/0.2)
            "import_over_torch": 0.2,
        }
    )


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="PSS needs Linux smaps_rollup")
def test_pss_smoke_counts_the_main_process_and_both_workers() -> None:
    sec = pss.bench_pss(make_config("smoke"), QUIET)
    (row,) = sec["rows"]
    assert row["method"] == "ours" and row["data"] == "parquet" and row["workers_seen"] == pss.WORKERS
    (sample,) = row["samples"]
    assert sample["total_pss_kib"] == sample["main"]["pss"] + sum(w["pss"] for w in sample["workers"])
    assert 0 < row["main_pss_mib"] < row["total_pss_mib"]
    assert [(t[0], t[2]) for t in pss.pss_targets(sec)] == [("pss_vs_lerobot", None)]  # no LeRobot in --smoke
    made_up = {
        "rows": [
            {**row, "method": "LeRobot", "total_pss_mib": 4 * row["total_pss_mib"]},
            row,
            {**row, "data": "video", "total_pss_mib": 3.0},
            {**row, "data": "video", "method": "LeRobot", "total_pss_mib": 10.0},
        ]
    }
    values = {t[0]: t[2] for t in pss.pss_targets(made_up)}
    assert values == pytest.approx({"pss_vs_lerobot": 0.25, "pss_video_vs_lerobot": 0.3})


def test_overhead_smoke_and_its_target_in_percent() -> None:
    sec = overhead.bench_overhead(make_config("smoke"), QUIET)
    assert {r["method"] for r in sec["rows"]} == {overhead.SAMPLER, overhead.NODE}
    assert all(r["us_per_sample"] > 0 for r in sec["rows"])
    assert overhead.overhead_target(sec, None)[2] is None  # no video section: skipped
    made_up = {
        "rows": [{"method": overhead.SAMPLER, "us_per_sample": 0.2}, {"method": "x", "us_per_sample": 0.5}]
    }
    from benchmarks.cases.video import FRAMES

    video = {"rows": [{"workers": 0, "method": FRAMES, "samples_per_s": 500.0}]}  # 2000 µs per sample
    assert overhead.overhead_target(made_up, video)[2] == pytest.approx(100 * 0.5 / 2000)


def test_lerobot_runner(monkeypatch) -> None:
    monkeypatch.setenv(lerobot_real.ENV, sys.executable)  # a Python without lerobot
    lerobot_real._probe.cache_clear()
    note = lerobot_real.available()
    assert note is not None and "cannot import lerobot" in note
    monkeypatch.setenv(lerobot_real.ENV, "/nonexistent/python")
    assert "cannot run" in lerobot_real.available()
    out = lerobot_real.run_snippet(
        sys.executable, "import json, os; print(json.dumps({'a': os.environ['HF_HUB_OFFLINE']}))"
    )
    assert out["a"] == "1" and out["wall_s"] > 0 and out["spawn_t"] > 0
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        lerobot_real.run_snippet(sys.executable, "1 / 0")
