"""The benchmark suite (``benchmarks/`` at the repo root) runs end to end at tiny sizes and writes a
well-formed report (no timing asserts). The tests that need the ``--smoke`` run (about 3 s once torch
is imported, 5 s cold) or draw the plots are marked slow; the others take well under a second."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ lives at the repository root, outside the installed package
    sys.path.insert(0, str(ROOT))

import benchmarks as bench  # noqa: E402

TARGETS = {
    "restore_built_vs_grain",
    "restore_position_ratio",
    "restore_size_ratio",
    "memory_peak",
    "e2e_vs_dataloader",
    "state_size",
    "video_frames_vs_limit",
    "video_blocks8_vs_limit",
    "video_blocks32_vs_limit",
    "pss_vs_lerobot",
    "startup_first_batch_vs_lerobot",
    "startup_setup_vs_lerobot",
    "import_over_torch",
    "overhead_vs_video",
}
# compared with the real LeRobot, which --smoke does not run: skipped there, never failed
REAL_LEROBOT = {"pss_vs_lerobot", "startup_first_batch_vs_lerobot", "startup_setup_vs_lerobot"}
# the sampler micro-benchmarks: measured and reported, not PASS/FAIL targets
INFORMATIONAL = {
    "fullepoch_vs_materialized",
    "iter_vs_randomsampler",
    "iter_vs_lerobot",
    "loader_vs_samplerwrapper",
    "iter_vs_distributedsampler",
    "fullepoch_vs_randperm",
    "blocks_vs_frames",
    "episodes_vs_frames",
    "restore_construct_vs_grain",
    # video, beside the decode-limit targets (the smoke run has no workers rows)
    "video_frames_vs_lerobot_w0",
    "video_blocks_vs_lerobot_w0",
    "video_lerobot_vs_limit",
    "video_blocks32_uint8_vs_limit",
    "video_frames_threads_vs_limit",
    "video_blocks32_threads_vs_limit",
}


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = bench.main(["--smoke", "--quiet", "--no-plots", "--out", str(out)])
    assert code == 0
    return json.loads((out / "bench-smoke.json").read_text()), out


@pytest.mark.slow
def test_report_structure(smoke_report):
    report, _ = smoke_report
    assert report["schema"] == 1 and report["mode"] == "smoke"
    assert set(report["sections"]) == set(bench.SECTIONS)
    for key in ("python", "torch", "torchdata", "numpy", "cpu_count"):
        assert key in report["machine"]
    for key in ("load_start", "load_end"):  # os.getloadavg() at the start and the end of the run
        load = report["machine"][key]
        assert load is None or (len(load) == 3 and all(x >= 0 for x in load))
    assert report["config"]["reps"] >= 3


@pytest.mark.slow
def test_every_target_is_evaluated(smoke_report, capsys):
    report, _ = smoke_report
    targets = {t["name"]: t for t in report["targets"]}
    assert set(targets) == TARGETS
    grain_missing = "Grain" in report["sections"]["peers_restore"]["skipped"]
    for name, t in targets.items():
        missing = (grain_missing and name.endswith("_vs_grain")) or name in REAL_LEROBOT
        if missing:  # a missing peer skips its targets, never fails
            assert t["value"] is None and t["pass"] is None
            assert bench.format_target(t).startswith("SKIP")
            continue
        assert isinstance(t["value"], float) and t["value"] > 0
        assert isinstance(t["pass"], bool)
        assert t["op"] in (">=", "<=", "<")
        assert bench.format_target(t).startswith(("PASS", "FAIL"))
    infos = {i["name"]: i for i in report["informational"]}
    assert set(infos) == INFORMATIONAL
    for name, i in infos.items():
        assert "pass" not in i and "threshold" not in i
        if grain_missing and name.endswith("_vs_grain"):
            assert i["value"] is None and bench.format_info(i).startswith("INFO")
            continue
        assert isinstance(i["value"], float) and i["value"] > 0
        assert bench.format_info(i).startswith("INFO")


@pytest.mark.slow
def test_section_rows(smoke_report):
    sec = smoke_report[0]["sections"]
    methods = {r["method"] for r in sec["fullepoch"]["rows"]}
    for m in ("feistel/frames", "feistel/episodes", "feistel/blocks", "randperm/frames", "materialized"):
        assert m in methods
    for m in (
        "torch.randperm",
        "DistributedSampler list",
        "Loader(SamplerWrapper(RandomSampler))",
        "LeRobot-style per-item",
    ):
        assert m in methods
    for r in sec["fullepoch"]["rows"]:
        assert len(r["times_s"]) >= 3 and r["median_s"] > 0
    assert all(r["items_per_s"] > 0 for r in sec["iteration"]["rows"])
    restore = sec["restore"]["rows"]
    assert {r["N"] for r in restore} >= {10**3, 10**12}
    assert all(r["sampler_restore_s"] > 0 and r["node_restore_s"] > 0 for r in restore)
    mem = sec["memory"]["rows"]
    assert {r["N"] for r in mem} >= {10**12}
    assert all(r["tracemalloc_peak_bytes"] > 0 for r in mem)
    assert {r["method"] for r in sec["e2e"]["rows"]} >= {
        "Loader(Prefetcher(Mapper(EpisodeSamplerNode, get_batch)))",
        "DataLoader(batch_size, RandomSampler, num_workers=0)",
    }
    assert all(0 < r["json_bytes"] for r in sec["state"]["rows"])
    peers = {r["method"] for r in sec["peers_restore"]["rows"]}
    assert {"ours built", "ours construct", "StatefulDistributedSampler construct"} <= peers
    quality = {r["method"]: r for r in sec["quality"]["rows"]}
    assert {"numpy.random.permutation (reference)", "ours feistel"} <= set(quality)
    for r in quality.values():
        assert (
            -1 <= r["position_correlation"] <= 1 and 0 <= r["gap_ks"] <= 1 and 0 <= r["first_percent_p"] <= 1
        )


@pytest.mark.slow
def test_video_section_reports_the_limit_and_fractions(smoke_report):
    from benchmarks.cases.video import LIMIT, READERS

    sec = smoke_report[0]["sections"]["video"]
    # the keys the figures read: the limit (samples/s) and each reader's fraction of it
    assert sec["limit"] > 0 and sec["limit_uint8"] > 0
    # the limit decodes every frame of every camera's files once: one sample per frame of the dataset
    assert all(run["samples"] == sec["frames"] for run in sec["limit_runs"][LIMIT])
    rows = {(r["workers"], r["method"]): r for r in sec["rows"]}
    for name in READERS:
        row = rows[0, name]
        assert row["fraction_of_limit"] > 0 and row["fraction_of_limit_cpu"] > 0
        # at least one decoded frame per camera of every sample; fewer than a keyframe interval more
        assert 1 <= row["frames_per_sample_camera"] < 2.5


@pytest.mark.slow
def test_workers_rows_count_the_workers_cpu(tmp_path):
    from benchmarks.cases.video import WORKERS_COMPARED, bench_workers, video_targets, workers_ratios
    from benchmarks.timing import Log
    from episode_sampler import write_lerobot_dataset

    write_lerobot_dataset(
        tmp_path, 2, 20, 20, seed=0, episodes_per_file=1, cameras={"observation.images.a": (64, 64)}
    )
    rows = bench_workers(str(tmp_path), 4, 1, Log(True))
    by_name = {r["method"]: r for r in rows}
    for _, name, base in WORKERS_COMPARED:
        for r in (by_name[name], by_name[base]):
            run = r["runs"][0]
            assert run["samples"] == 4 * (40 // 4 - 2)  # full batches after the first, short of the end
            assert run["cpu_s"] > 0
    # process workers decode in other processes: their CPU is counted (a process alone would not
    # reach 2 workers' CPU; a count missing the workers would show a tiny fraction of a core)
    assert by_name["DataLoader, uint8, num_workers=2"]["cpu_per_wall"] > 0.3
    ratios = workers_ratios({"workers": rows})
    assert all(v is not None and v > 0 for v in ratios.values())
    names = {t[0] for t in video_targets({"rows": [], "workers": rows, "cameras": {"a": 1}, "batch_size": 4})}
    assert {"workers_cpu_efficiency", "workers_speedup", "workers_speedup_one_thread"} <= names


def test_benchmark_float_conversion_is_lerobots():
    import torch

    from benchmarks.cases.video import to_float

    u8 = torch.arange(256, dtype=torch.uint8).reshape(1, 4, 8, 8)
    out = to_float({"cam": u8.clone(), "other": 1}, ("cam",))
    assert out["other"] == 1 and torch.equal(out["cam"], u8.type(torch.float32) / 255)


def test_quality_probes_tell_a_local_shuffle_from_a_uniform_one():
    from benchmarks.cases.quality import first_percent_chi2, gap_ks, position_correlation

    n = 20000
    uniform = np.random.default_rng(0).permutation(n)
    local = np.concatenate([np.random.default_rng(i).permutation(1000) + 1000 * i for i in range(20)])
    assert abs(position_correlation(uniform)) < 0.03 and position_correlation(np.arange(n)) == pytest.approx(
        1
    )
    assert position_correlation(local) > 0.99
    assert gap_ks(uniform) < 0.03 and gap_ks(local) > 0.9
    assert first_percent_chi2(uniform)[1] > 0.001 and first_percent_chi2(local)[1] < 1e-6


def test_missing_peer_is_skipped_with_a_note(monkeypatch):
    from benchmarks import peers
    from benchmarks.peers import grain_peer

    monkeypatch.setattr(grain_peer, "available", lambda: "grain not importable (test)")
    assert peers.missing()["grain"] == "grain not importable (test)"
    from benchmarks.cases.restore_peers import bench_restore_peers
    from benchmarks.config import make_config
    from benchmarks.timing import Log

    out = bench_restore_peers(make_config("smoke"), Log(True))
    assert out["skipped"]["Grain"] == "grain not importable (test)"
    assert not any(r["method"].startswith("Grain") for r in out["rows"])


@pytest.mark.slow
def test_docs_render_from_json(smoke_report, tmp_path):
    pytest.importorskip("matplotlib")
    _, out = smoke_report
    docs = tmp_path / "docs"
    code = bench.main(
        [
            "--from-json",
            str(out / "bench-smoke.json"),
            "--out",
            str(tmp_path / "plots"),
            "--docs",
            "--docs-dir",
            str(docs),
        ]
    )
    assert code == 0
    text = (docs / "performance.md").read_text()
    assert "## Targets" in text and "| target | measured | threshold | result |" in text
    assert "## Sampler micro-benchmarks (informational)" in text and "| ratio | measured |" in text
    assert "python -m benchmarks --docs" in text and "kernel" not in text.lower()  # pure Python, no CLI
    assert "episode-sampler bench" not in text
    assert "other jobs ran during this run" not in text  # the load is stated as measured, never assumed
    load = json.loads((out / "bench-smoke.json").read_text())["machine"]["load_start"]
    if load is not None:
        assert f"load average was {load[0]:.2f} at the start" in text
    for name in (
        "perf_fullepoch.png",
        "perf_iteration.png",
        "perf_restore.png",
        "perf_memory.png",
        "perf_e2e.png",
        "perf_restore_peers.png",
    ):
        assert (docs / "img" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"img/{name}" in text


def test_layout_is_exact_at_any_size():
    for n, e in ((5, 3), (10**4, 10**4), (10**7, 10**4), (10**12, 10**3), (10**18, 10)):
        index = bench.make_layout(n, e)
        assert index.num_frames == n and index.num_episodes == e
        assert int(index.lengths.min()) >= 1


def test_module_runner_help():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--docs" in proc.stdout


def test_benchmarks_are_outside_the_package():
    code = (
        "import importlib.util, sys, episode_sampler; "
        "print(importlib.util.find_spec('episode_sampler.bench'), "
        "sorted(m for m in sys.modules if m.startswith(('benchmarks', 'matplotlib'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "None []"


def test_plots_are_skipped_with_a_note_without_matplotlib(tmp_path, monkeypatch, capsys):
    from benchmarks.plots import NO_MATPLOTLIB, plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    report = {"schema": 1, "mode": "smoke", "sections": {}, "targets": [], "informational": []}
    assert plots(report, tmp_path / "plots") == []
    assert NO_MATPLOTLIB in capsys.readouterr().out
    assert not (tmp_path / "plots").exists()


def test_docs_page_states_the_measured_load():
    from benchmarks.docs_page import load_cell, load_sentence

    mc = {"cpu_count": 2, "load_start": [0.25, 0.5, 1.0], "load_end": [3.5, 2.0, 1.25]}
    text = " ".join(load_sentence(mc))
    assert "2 cores" in text and "was 0.25 at the start" in text and "3.50 at the end" in text
    assert load_cell(mc) == "0.25 / 0.50 / 1.00 at the start, 3.50 / 2.00 / 1.25 at the end"
    old_report = {"cpu_count": 2}  # written before the load was recorded: no claim either way
    assert "not recorded" in " ".join(load_sentence(old_report)) and load_cell(old_report) == "not recorded"
    assert "not recorded" in load_cell({"cpu_count": 2, "load_start": None, "load_end": None})


def _report_files(tmp_path: Path) -> dict[str, Path]:
    from episode_sampler import EpisodeAwareSampler

    good_target = {
        "name": "t",
        "pass": True,
        "value": 2.0,
        "unit": "x",
        "threshold": 1.0,
        "op": ">=",
        "description": "d",
    }
    base = {"schema": 1, "mode": "smoke", "sections": {}, "targets": [good_target]}
    texts = {
        "empty": "",
        "garbage": "not json at all {",
        "truncated": json.dumps(base)[:30],
        "keyless": "{}",
        "list": "[1, 2]",
        "foreign": json.dumps(EpisodeAwareSampler([0, 40], [30, 90], shuffle=True).state_dict()),
        "schema 2": json.dumps({**base, "schema": 2}),
        "bad target": json.dumps({**base, "targets": [{"name": "t"}]}),
        "bad section": json.dumps({**base, "sections": {"fullepoch": {"rows": 7}}}),
    }
    files = {name: tmp_path / f"{name.replace(' ', '_')}.json" for name in texts}
    for name, text in texts.items():
        files[name].write_text(text)
    files["binary"] = tmp_path / "binary.json"
    files["binary"].write_bytes(bytes(range(256)))
    files["missing"] = tmp_path / "missing.json"
    files["directory"] = tmp_path
    return files


def _usage_error(argv: list[str], capsys) -> str:
    """Run the suite's command line, expect a usage error (exit 2); its one error line."""
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert err.startswith("usage: python -m benchmarks") and lines[-1].startswith(
        "python -m benchmarks: error: "
    )
    assert all(ln.startswith(("usage:", " ")) for ln in lines[:-1]), err
    return lines[-1]


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "directory",
        "empty",
        "garbage",
        "truncated",
        "binary",
        "keyless",
        "list",
        "foreign",
        "schema 2",
        "bad target",
        "bad section",
    ],
)
def test_from_json_errors_are_one_line(case: str, tmp_path: Path, capsys) -> None:
    path = _report_files(tmp_path)[case]
    assert "--from-json" in _usage_error(["--from-json", str(path), "--out", str(tmp_path / "out")], capsys)


@pytest.mark.parametrize("argv", [["--from-json"], ["--nope"], ["--only", "nothing"]])
def test_usage_errors(argv: list[str], capsys) -> None:
    _usage_error(argv, capsys)
