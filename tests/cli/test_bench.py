"""``episode-sampler bench DATASET_DIR`` (issue 20, item 2): it measures a LeRobot-written dataset (video
or Parquet only) within a tiny budget, writes JSON of the documented schema, recommends the smallest
unit and fewest workers within 90% of the best, and refuses bad flags in one line."""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from episode_sampler import write_lerobot_dataset
from episode_sampler.cli.bench import default_workers, settings_for
from episode_sampler.cli.bench_measure import (
    DECODE_COUNTERS,
    Setting,
    cpu_between,
    cpu_snapshot,
    same_episode_share,
    summarize,
    uniform_same_episode_share,
)
from episode_sampler.cli.bench_report import SCHEMA, noise_lines, recommend, table_lines
from tests.helpers.cli import run, subcommand_error
from tests.helpers.video_dataset import TOP

RUN_KEYS = {
    "order",
    "block_size",
    "workers",
    "samples_per_s",
    "samples_per_s_rounds",
    "timed_samples",
    "timed_batches",
    "timed_seconds",
    "cpu_seconds",
    "samples_per_cpu_s",
    "epochs_started",
    "setup_s",
    "first_batch_s",
    "delivered_bytes_per_sample",
    "decode",
    "same_episode_share",
    "fraction_of_best",
}
DECODE_KEYS = {
    "backend",
    "cameras",
    "files_opened",
    "packets_per_sample",
    "packet_bytes_per_sample",
    "frames_decoded_per_sample_camera",
    "seeks_per_sample",
}


@pytest.fixture(scope="module")
def parquet_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench") / "parquet"
    write_lerobot_dataset(root, num_episodes=12, min_length=10, max_length=20, seed=0)
    return root


@pytest.fixture(scope="module")
def video_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench") / "video"
    write_lerobot_dataset(root, num_episodes=4, min_length=12, max_length=20, seed=1, cameras={TOP: (64, 64)})
    return root


def check_schema(doc: dict, *, runs: int, cameras: bool) -> None:
    """The JSON document has exactly the documented keys and types (bench_report's module doc)."""
    assert set(doc) == {
        "schema",
        "dataset",
        "settings",
        "machine",
        "uniform_same_episode_share",
        "runs",
        "recommendation",
        "first_batch_fresh_process",
    }
    assert doc["schema"] == SCHEMA
    assert set(doc["dataset"]) == {
        "root",
        "episodes",
        "frames",
        "min_episode_length",
        "max_episode_length",
        "cameras",
        "columns",
    }
    assert set(doc["settings"]) == {
        "batch_size",
        "seconds",
        "rounds",
        "workers",
        "block_sizes",
        "dropped_block_sizes",
        "uint8",
        "video_backend",
        "seed",
        "threshold",
    }
    assert set(doc["machine"]) == {
        "cpu_count",
        "load_start",
        "load_end",
        "python",
        "torch",
        "episode_sampler",
    }
    assert 0 <= doc["uniform_same_episode_share"] <= 1
    assert len(doc["runs"]) == runs
    for r in doc["runs"]:
        assert set(r) == RUN_KEYS
        assert r["order"] in ("frames", "blocks") and (r["block_size"] is None) == (r["order"] == "frames")
        assert r["samples_per_s"] > 0 and r["timed_batches"] >= doc["settings"]["rounds"]
        assert r["samples_per_s"] == pytest.approx(r["timed_samples"] / r["timed_seconds"])
        assert len(r["samples_per_s_rounds"]) == doc["settings"]["rounds"]
        assert min(r["samples_per_s_rounds"]) <= r["samples_per_s"] <= max(r["samples_per_s_rounds"])
        if sys.platform == "linux":  # CPU of this process and its workers, read from /proc
            assert 0 < r["cpu_seconds"] and r["samples_per_cpu_s"] == pytest.approx(
                r["timed_samples"] / r["cpu_seconds"]
            )
        assert 0 < r["setup_s"] <= r["first_batch_s"]
        assert r["delivered_bytes_per_sample"] > 0
        assert 0 <= r["same_episode_share"] <= 1 and 0 < r["fraction_of_best"] <= 1
        if cameras:
            assert set(r["decode"]) == DECODE_KEYS
        else:
            assert r["decode"] is None
    assert max(r["fraction_of_best"] for r in doc["runs"]) == 1.0
    rec = doc["recommendation"]
    assert set(rec) == {
        "order",
        "block_size",
        "workers",
        "samples_per_s",
        "fraction_of_best",
        "same_episode_share",
        "text",
    }
    assert rec["fraction_of_best"] >= doc["settings"]["threshold"]
    assert any(
        (r["order"], r["block_size"], r["workers"]) == (rec["order"], rec["block_size"], rec["workers"])
        for r in doc["runs"]
    )


# ---------------------------------------------------------------------------------------------- the command
def test_bench_parquet_only_dataset(parquet_dataset, tmp_path, capsys) -> None:
    out_json = tmp_path / "bench.json"
    code, out, err = run(
        [
            "bench",
            str(parquet_dataset),
            "--seconds",
            "0.02",
            "--workers",
            "0",
            "--block-sizes",
            "4,8,64",
            "--batch-size",
            "8",
            "--rounds",
            "1",
            "--json",
            str(out_json),
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    check_schema(doc, runs=3, cameras=False)
    assert doc["settings"]["block_sizes"] == [4, 8] and doc["settings"]["dropped_block_sizes"] == [64]
    assert doc["dataset"]["episodes"] == 12 and doc["dataset"]["cameras"] == {}
    assert doc["settings"]["video_backend"] is None
    # the budget first, then one plain line per setting (stderr is not a terminal: no \r redraws)
    lines = err.splitlines()
    budget = next(i for i, ln in enumerate(lines) if "settings x 0.02 s" in ln)
    assert "block sizes [64] skipped" in lines[budget]
    assert [ln.split(":")[0] for ln in lines[budget + 1 : budget + 4]] == [
        "[1/3] frames, 0 workers",
        "[2/3] blocks of 4, 0 workers",
        "[3/3] blocks of 8, 0 workers",
    ]
    assert "\r" not in err
    assert "no cameras (Parquet only" in out
    assert "decoded/sample" not in out  # no decode columns without cameras
    assert "recommended  EpisodeAwareSampler(..." in out and "shuffle      " in out


def test_bench_json_to_stdout(parquet_dataset, capsys) -> None:
    code, out, err = run(
        [
            "bench",
            str(parquet_dataset),
            "--seconds",
            "0.01",
            "--workers",
            "0",
            "--block-sizes",
            "4",
            "--json",
            "-",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out)  # stdout holds the JSON alone
    check_schema(doc, runs=2, cameras=False)
    assert "recommended" in err  # the table moved to stderr
    # two rounds by default, settings interleaved: the second round runs backwards
    steps = [ln.split(":")[0] for ln in err.splitlines() if ln.startswith("[")]
    assert steps == [
        "[1/4] frames, 0 workers (round 1/2)",
        "[2/4] blocks of 4, 0 workers (round 1/2)",
        "[3/4] blocks of 4, 0 workers (round 2/2)",
        "[4/4] frames, 0 workers (round 2/2)",
    ]


@pytest.mark.slow
def test_bench_video_dataset_with_workers_and_a_fresh_process(video_dataset, tmp_path, capsys) -> None:
    out_json = tmp_path / "bench.json"
    code, out, err = run(
        [
            "bench",
            str(video_dataset),
            "--seconds",
            "0.05",
            "--workers",
            "0,1",
            "--block-sizes",
            "8",
            "--batch-size",
            "8",
            "--video-backend",
            "pyav",
            "--uint8",
            "--fresh-process",
            "--json",
            str(out_json),
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    check_schema(doc, runs=4, cameras=True)
    assert doc["dataset"]["cameras"] == {TOP: [64, 64]}
    for r in doc["runs"]:
        d = r["decode"]
        assert d["backend"] == "pyav" and d["cameras"] == 1 and d["files_opened"] >= 1
        # every sample needs its frame decoded at least once; worker processes' decodes are counted too
        assert d["frames_decoded_per_sample_camera"] >= 1.0
        assert d["packet_bytes_per_sample"] > 0 and d["packets_per_sample"] >= 1.0
        assert r["delivered_bytes_per_sample"] >= 64 * 64 * 3  # uint8 CHW camera + numbers
    fresh = doc["first_batch_fresh_process"]
    rec = doc["recommendation"]
    assert (fresh["order"], fresh["block_size"], fresh["workers"]) == (
        rec["order"],
        rec["block_size"],
        rec["workers"],
    )
    assert fresh["process_to_first_batch_s"] > fresh["import_s"] > 0
    assert "frames/cam" in out and "new process" in out


# ---------------------------------------------------------------------------------------------- the logic
def _run(block: int | None, workers: int, rate: float) -> dict:
    return {
        "order": "frames" if block is None else "blocks",
        "block_size": block,
        "workers": workers,
        "samples_per_s": rate,
        "same_episode_share": 0.1,
    }


def test_recommend_smallest_unit_then_fewest_workers_within_90_percent() -> None:
    runs = [
        _run(None, 0, 100.0),
        _run(None, 2, 150.0),
        _run(4, 0, 300.0),
        _run(4, 2, 420.0),
        _run(8, 2, 500.0),
        _run(8, 0, 460.0),  # 460 >= 0.9 * 505: blocks of 8 are enough, and 0 workers do it
        _run(16, 0, 505.0),  # the best
    ]
    rec = recommend(runs)
    assert (rec["order"], rec["block_size"], rec["workers"]) == ("blocks", 8, 0)
    assert rec["fraction_of_best"] == pytest.approx(460 / 505)


def test_recommend_frames_when_they_are_fast_enough_and_the_threshold_is_inclusive() -> None:
    runs = [_run(None, 2, 90.0), _run(None, 4, 95.0), _run(32, 0, 100.0)]
    rec = recommend(runs)
    assert (rec["order"], rec["block_size"], rec["workers"]) == ("frames", None, 2)  # exactly 90%
    assert recommend([_run(None, 0, 89.9), _run(32, 4, 100.0)])["block_size"] == 32


def test_recommend_refuses_nothing_measured() -> None:
    with pytest.raises(ValueError, match="runs is empty"):
        recommend([])
    with pytest.raises(ValueError, match="no run delivered"):
        recommend([_run(None, 0, 0.0)])


def _pairs_reference(episodes: list[int], batch: int) -> float:
    same = pairs = 0
    for k in range(0, len(episodes) // batch * batch, batch):
        for a, b in itertools.combinations(episodes[k : k + batch], 2):
            pairs += 1
            same += a == b
    return same / pairs if pairs else 0.0


def test_same_episode_share_matches_a_pairwise_count() -> None:
    rng = np.random.default_rng(0)
    for batch in (2, 3, 8):
        eps = rng.integers(0, 4, size=50)
        assert same_episode_share(eps, batch) == pytest.approx(_pairs_reference(eps.tolist(), batch))
    assert same_episode_share(np.zeros(10, np.int64), 5) == 1.0
    assert same_episode_share(np.arange(3), 5) == 0.0  # no full batch


def test_uniform_share_matches_counting_frame_pairs() -> None:
    lengths = np.array([3, 1, 5])
    frames = np.repeat(np.arange(3), lengths)
    pairs = list(itertools.combinations(frames.tolist(), 2))
    assert uniform_same_episode_share(lengths) == pytest.approx(sum(a == b for a, b in pairs) / len(pairs))


def test_settings_skip_blocks_longer_than_every_episode_and_workers_default() -> None:
    settings, dropped = settings_for((4, 16, 32), (0, 2), longest_episode=20)
    assert dropped == [32]
    assert settings == [
        Setting("frames", None, 0),
        Setting("frames", None, 2),
        Setting("blocks", 4, 0),
        Setting("blocks", 4, 2),
        Setting("blocks", 16, 0),
        Setting("blocks", 16, 2),
    ]
    assert default_workers(1) == (0,) and default_workers(2) == (0, 2) and default_workers(64) == (0, 2)


def test_table_has_a_row_per_run_and_no_decode_columns_without_video() -> None:
    runs = [
        {**_run(None, 0, 1000.0), "first_batch_s": 0.5, "delivered_bytes_per_sample": 2048.0, "decode": None},
        {**_run(8, 2, 2000.0), "first_batch_s": 0.7, "delivered_bytes_per_sample": 2048.0, "decode": None},
    ]
    runs[0]["samples_per_s_rounds"] = [900.0, 1100.0]
    runs[1]["samples_per_s_rounds"] = [2000.0]
    runs[0]["samples_per_cpu_s"] = 1250.0
    runs[1]["samples_per_cpu_s"] = None
    for r in runs:
        r["fraction_of_best"] = r["samples_per_s"] / 2000.0
    lines = table_lines(runs, has_video=False)
    assert len(lines) == 4 and "decoded" not in lines[0]
    assert lines[2].split()[:7] == ["frames", "0", "1,000", "900..1,100", "50%", "1,250", "0.50"]
    assert lines[3].split()[:8] == ["blocks", "of", "8", "2", "2,000", "-", "100%", "n/a"]


def test_rounds_merge_into_one_run_record() -> None:
    def round_(samples: int, seconds: float, first: float, decoded: int) -> dict:
        counts = dict.fromkeys(DECODE_COUNTERS, 0)
        counts.update(frames_decoded=decoded, packet_bytes=10 * decoded, opens=1)
        return {
            "setup_s": first / 2,
            "first_batch_s": first,
            "timed_samples": samples,
            "timed_batches": samples // 8,
            "timed_seconds": seconds,
            "cpu_seconds": seconds * 1.5,
            "samples": samples + 8,
            "delivered_bytes": 100 * (samples + 8),
            "epochs_started": 1,
            "cameras": 2,
            "decode": counts,
        }

    rounds = [round_(80, 1.0, 0.3, 200), round_(40, 1.0, 0.1, 100), round_(120, 2.0, 0.2, 300)]
    run = summarize(Setting("blocks", 8, 2), rounds, "pyav")
    assert run["samples_per_s"] == pytest.approx(240 / 4.0)  # all timed samples over all timed seconds
    assert run["samples_per_s_rounds"] == [80.0, 40.0, 60.0]
    assert run["cpu_seconds"] == pytest.approx(6.0) and run["samples_per_cpu_s"] == pytest.approx(40.0)
    unknown = summarize(Setting("blocks", 8, 2), [rounds[0], {**rounds[1], "cpu_seconds": None}], "pyav")
    assert unknown["cpu_seconds"] is None and unknown["samples_per_cpu_s"] is None
    assert (run["first_batch_s"], run["setup_s"]) == (pytest.approx(0.2), pytest.approx(0.1))  # medians
    assert run["delivered_bytes_per_sample"] == pytest.approx(100.0)
    assert run["decode"]["frames_decoded_per_sample_camera"] == pytest.approx(600 / 264 / 2)
    assert run["decode"]["packet_bytes_per_sample"] == pytest.approx(6000 / 264)
    assert run["decode"]["files_opened"] == 3
    tc = summarize(Setting("frames", None, 0), rounds, "torchcodec")["decode"]
    assert tc["frames_decoded_per_sample_camera"] is None and tc["packet_bytes_per_sample"] is None
    assert summarize(Setting("frames", None, 0), [{**rounds[0], "cameras": 0}], "pyav")["decode"] is None


def test_noise_note_when_rounds_disagree() -> None:
    calm = [{"samples_per_s_rounds": [100.0, 110.0]}, {"samples_per_s_rounds": [50.0]}]
    assert noise_lines(calm, [0.1, 0.1, 0.1]) == []
    busy = [*calm, {"samples_per_s_rounds": [30.0, 90.0]}]
    note = noise_lines(busy, [7.5, 7.0, 6.0])
    assert note[0].startswith("note         the rounds of one setting differ by up to 3.0x")
    assert "(load average 7.50)" in note[0] and "idle machine" in note[1]


def test_cpu_between_counts_this_process_and_its_workers() -> None:
    before = (10.0, {101: 1.0, 102: 2.0})
    after = (10.5, {101: 2.0, 102: 2.5})
    assert cpu_between(before, after, workers=2) == pytest.approx(0.5 + 1.0 + 0.5)
    assert cpu_between(before, after, workers=0) == pytest.approx(0.5)  # workers=0: this process only
    assert cpu_between(before, (10.5, {}), workers=2) is None  # the workers cannot be read
    assert cpu_between(before, (10.5, {101: 2.0, 102: None}), workers=2) is None


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_cpu_snapshot_sees_a_busy_child() -> None:
    import subprocess

    busy = "import time\nt = time.time()\nwhile time.time() - t < 2: pass"
    child = subprocess.Popen([sys.executable, "-c", busy])
    try:
        time.sleep(0.2)
        before = cpu_snapshot()
        time.sleep(0.5)
        after = cpu_snapshot()
    finally:
        child.kill()
        child.wait()
    assert child.pid in before[1] and child.pid in after[1]
    assert after[1][child.pid] > before[1][child.pid]  # its CPU time grew while it spun
    assert cpu_between(before, after, workers=1) > after[0] - before[0]


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seconds", "0"], "--seconds must be > 0, got 0"),
        (["--seconds", "soon"], "--seconds must be a number, got 'soon'"),
        (["--workers", "0,two"], "--workers must be comma-separated integers, got '0,two'"),
        (["--workers", "-1"], "--workers values must be >= 0, got -1"),
        (["--block-sizes", "1,8"], "--block-sizes values must be >= 2, got 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--rounds", "0"], "--rounds must be in [1, 100], got 0"),
        (
            ["--columns", "action,,index"],
            "--columns must be comma-separated column names, got 'action,,index'",
        ),
        (["--video-backend", "opencv"], "--video-backend: invalid choice: 'opencv'"),
        (
            ["--json", "/nonexistent-dir/x.json"],
            "--json '/nonexistent-dir/x.json': directory '/nonexistent-dir'",
        ),
        (["--columns", "no_such_column"], "--columns: "),
    ],
)
def test_bad_flags_give_one_line(parquet_dataset, capsys, flags, message) -> None:
    code, out, err = run(["bench", str(parquet_dataset), "--quiet", *flags], capsys)
    assert code == 2 and out == ""
    line = subcommand_error(err, "bench")
    assert len(err.splitlines()) == 1, err
    assert line.startswith(f"episode-sampler bench: error: {message}"), line
    flag = flags[0]
    assert line.count(flag) == 1 or flag == "--json", line


def test_bad_dataset_dir_gives_one_line(tmp_path, capsys) -> None:
    code, _, err = run(["bench", str(tmp_path / "missing")], capsys)
    assert code == 2 and subcommand_error(err, "bench").endswith("is not a directory")
    code, _, err = run(["bench", str(tmp_path)], capsys)
    assert code == 2 and subcommand_error(err, "bench").endswith(
        "is not a LeRobot v3 dataset (no meta/info.json)"
    )
    assert len(err.splitlines()) == 1
