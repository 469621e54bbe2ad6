"""Dataset mixtures: lerobot_mixture's stream, exact restore into a fresh graph through a JSON
checkpoint, argument checks, and a real SIGKILL of the mixture pipeline."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from torchdata.nodes import Loader, Prefetcher, StopCriteria

from episode_sampler import EpisodeAwareSampler, write_lerobot_dataset
from episode_sampler.mixture import lerobot_mixture, mixture, state_from_json, state_to_json
from episode_sampler.node import EpisodeSamplerNode

ROOT = Path(__file__).resolve().parents[2]
BATCH = 4


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("mix")
    out = {}
    for i, n in enumerate((3, 5)):
        root = base / f"ds{i}"
        write_lerobot_dataset(root, num_episodes=n, min_length=4, max_length=9, seed=10 + i)
        out[f"ds{i}"] = str(root)
    return out


def build(roots, stop=StopCriteria.ALL_DATASETS_EXHAUSTED) -> Loader:
    graph = lerobot_mixture(
        roots,
        {"ds0": 1, "ds1": 2},
        batch_size=BATCH,
        columns=["index"],
        stop_criteria=stop,
        seed=5,
        shuffle=True,
        rank=0,
        world_size=1,
    )
    return Loader(Prefetcher(graph, 2))


def items(batches) -> list[tuple[str, list[int]]]:
    return [(b["dataset"], b["index"].tolist()) for b in batches]


def test_each_batch_is_one_datasets_next_batch(roots):
    got = items(build(roots))
    for name, root in roots.items():
        sampler = EpisodeAwareSampler.from_lerobot(root, shuffle=True, seed=5)
        order = sampler.frame_indices(0).tolist()  # identity relabel: contiguous synthetic data
        want = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
        assert [idx for ds, idx in got if ds == name] == want
    assert Counter(ds for ds, _ in got).keys() == set(roots)


@pytest.mark.parametrize(
    "stop",
    [
        StopCriteria.ALL_DATASETS_EXHAUSTED,
        StopCriteria.FIRST_DATASET_EXHAUSTED,
        StopCriteria.CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED,
    ],
)
def test_restore_from_a_json_checkpoint_into_a_fresh_graph(roots, stop):
    ref_loader = build(roots, stop)
    epochs = [items(ref_loader) for _ in range(3)]
    n = len(epochs[0])
    for k in sorted({0, 1, n // 2, n - 1, n}):
        loader = build(roots, stop)
        it = iter(loader)
        head = items(next(it) for _ in range(k))
        assert head == epochs[0][:k]
        text = json.dumps(state_to_json(loader.state_dict()))  # what a checkpoint file holds
        restored = build(roots, stop)
        restored.load_state_dict(state_from_json(json.loads(text)))
        rest = items(restored)
        if k == n:  # Loader(restart_on_stop_iteration=True) moves on to the next pass at once
            assert rest == epochs[1]
            assert items(restored) == epochs[2]
        else:
            assert rest == epochs[0][k:], f"after {k} batches"
            assert items(restored) == epochs[1]


def test_state_json_roundtrip_keeps_tensors():
    state = {"g": torch.arange(7, dtype=torch.uint8), "x": [1, {"y": torch.tensor([1.5, 2.5])}], "n": None}
    back = state_from_json(json.loads(json.dumps(state_to_json(state))))
    assert torch.equal(back["g"], state["g"]) and back["g"].dtype == torch.uint8
    assert torch.equal(back["x"][1]["y"], state["x"][1]["y"])
    assert back["n"] is None and back["x"][0] == 1
    with pytest.raises(ValueError, match="malformed tensor"):
        state_from_json({"__tensor__": {"dtype": "uint8"}})


def test_bad_arguments_are_named(roots):
    a, b = EpisodeSamplerNode([0], [3]), EpisodeSamplerNode([0], [4])
    with pytest.raises(ValueError, match="weights must have one entry per dataset"):
        mixture({"a": a, "b": b}, {"a": 1.0})
    with pytest.raises(ValueError, match=r"weights\['b'\] must be a finite number > 0"):
        mixture({"a": a, "b": b}, {"a": 1.0, "b": 0})
    with pytest.raises(TypeError, match=r"weights\['b'\] must be a number"):
        mixture({"a": a, "b": b}, {"a": 1.0, "b": "2"})
    with pytest.raises(ValueError, match="stop_criteria"):
        mixture({"a": a, "b": b}, {"a": 1, "b": 1}, stop_criteria="SOMETIMES")
    with pytest.raises(TypeError, match=r"sources\['a'\]"):
        mixture({"a": [1, 2]}, {"a": 1})
    with pytest.raises(ValueError, match="roots"):
        lerobot_mixture({}, {}, batch_size=2)
    with pytest.raises(TypeError, match="tag"):
        lerobot_mixture(roots, {"ds0": 1, "ds1": 1}, batch_size=2, tag=3)


def _read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]


# ---------------------------------------------------------------------------------------------- the pipeline
SCRIPT = ROOT / "pipelines" / "mixture.py"


@pytest.fixture(scope="module")
def pipeline():
    """pipelines/mixture.py as a module; ``main`` runs in this process (torch threads restored after)."""
    spec = importlib.util.spec_from_file_location("mixture_pipeline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(pipeline, argv: list[str]) -> int:
    threads = torch.get_num_threads()  # the pipeline sets torch's threads (--threads, default 1)
    try:
        return pipeline.main(argv)
    finally:
        torch.set_num_threads(threads)


def root_flags(roots: dict[str, str]) -> list[str]:
    return [flag for name, root in roots.items() for flag in ("--root", f"{name}={root}")]


def test_epochs_are_passes_of_the_mixture_and_resume_across_their_ends(pipeline, roots, tmp_path):
    """With ALL_DATASETS_EXHAUSTED one epoch reads every dataset's epoch exactly once: the log's batches
    of (epoch e, dataset d) are d's sampler order of epoch e, in batches (computed by the sampler, not
    the pipeline). A checkpoint at the end of a pass (the end of a run by --epochs, and by --steps on
    a pass's last batch) resumes into the next pass with the right epoch."""
    flags = [*root_flags(roots), "--batch-size", str(BATCH), "--seed", "7", "--weight", "ds1=2"]
    flags += ["--stop-criteria", "ALL_DATASETS_EXHAUSTED"]
    ref_log = tmp_path / "ref.jsonl"
    assert run_main(pipeline, [*flags, "--epochs", "3", "--log-indices", str(ref_log)]) == 0
    reference = _read_log(ref_log)
    for epoch in range(3):
        for name, root in roots.items():
            sampler = EpisodeAwareSampler.from_lerobot(root, shuffle=True, seed=7, permutation="feistel")
            order = sampler.frame_indices(epoch).tolist()
            want = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
            got = [s["indices"] for s in reference if s["epoch"] == epoch and s["dataset"] == name]
            assert got == want, (epoch, name)
    assert [s["step"] for s in reference] == list(range(1, len(reference) + 1))
    per_epoch = sum(1 for s in reference if s["epoch"] == 0)

    ckpt, log = tmp_path / "ck.json", tmp_path / "run.jsonl"  # epoch 0 by --epochs, then by --steps
    common = [*flags, "--checkpoint", str(ckpt), "--log-indices", str(log)]
    assert run_main(pipeline, [*common, "--epochs", "1"]) == 0
    assert run_main(pipeline, [*common, "--epochs", "3", "--steps", str(2 * per_epoch), "--resume"]) == 0
    assert run_main(pipeline, [*common, "--epochs", "3", "--resume"]) == 0
    assert _read_log(log) == reference
    assert json.loads(ckpt.read_text())["epochs"] == [3]


def test_a_checkpoint_is_refused_unless_the_settings_match(pipeline, roots, tmp_path, capsys):
    ckpt = tmp_path / "ck.json"
    flags = [*root_flags(roots), "--batch-size", str(BATCH), "--steps", "5", "--checkpoint", str(ckpt)]
    assert run_main(pipeline, flags) == 0
    with pytest.raises(SystemExit) as info:  # never resumed (or overwritten) without --resume
        run_main(pipeline, [*flags, "--steps", "9"])
    assert info.value.code == 2 and "add --resume" in capsys.readouterr().err
    saved = ckpt.read_text()
    for extra, field in (
        (["--weight", "ds0=2"], "weights"),
        (["--stop-criteria", "ALL_DATASETS_EXHAUSTED"], "stop_criteria"),
        (["--seed", "1"], "seed"),
        (["--permutation", "randperm"], "permutation"),
    ):
        capsys.readouterr()
        assert run_main(pipeline, [*flags, *extra, "--resume"]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("mixture.py: error: ") and f"with {field} " in err[0]
    one = {"ds0": roots["ds0"]}
    assert (
        run_main(
            pipeline, [*root_flags(one), "--batch-size", str(BATCH), "--checkpoint", str(ckpt), "--resume"]
        )
        == 2
    )
    assert "with datasets ['ds0', 'ds1']" in capsys.readouterr().err
    record = json.loads(saved)
    record["world_size"] = 2
    ckpt.write_text(json.dumps(record))
    assert run_main(pipeline, [*flags, "--resume"]) == 2
    assert "written by 2 rank(s), this run has 1" in capsys.readouterr().err
    ckpt.write_text("{}")
    assert run_main(pipeline, [*flags, "--resume"]) == 2
    assert "not a checkpoint of mixture.py" in capsys.readouterr().err


BAD_MIXTURE_FLAGS = [
    (["--weight", "ds1"], "--weight must be NAME=W"),
    (["--weight", "ds7=2"], "names no dataset of the mixture: 'ds7'"),
    (["--weight", "ds1=0"], "finite number > 0"),
    (["--weight", "ds1=inf"], "finite number > 0"),
    (["--weight", "ds1=heavy"], "must be a number"),
    (["--datasets", "0"], "--datasets must be >= 1"),
    (["--root", "{ds0}", "--datasets", "2"], "does not apply with --root"),
    (["--root", "{ds0}", "--root", "{ds0}"], "two datasets named 'ds0'"),
    (["--root", "a={missing}"], "not a LeRobot v3 dataset"),
    (["--stop-criteria", "CYCLE_FOREVER"], "never ends a pass: give --steps"),
    (["--stop-criteria", "SOMETIMES"], "invalid choice"),
]


@pytest.mark.parametrize(
    ("argv", "message"), BAD_MIXTURE_FLAGS, ids=[" ".join(a) for a, _ in BAD_MIXTURE_FLAGS]
)
def test_bad_mixture_flags_are_one_line_usage_errors(pipeline, roots, tmp_path, argv, message, capsys):
    argv = [a.format(ds0=roots["ds0"], missing=tmp_path / "nothing") for a in argv]
    with pytest.raises(SystemExit) as info:
        pipeline.parse_args(argv)
    assert info.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("mixture.py: error: ") and message in last


def test_several_ranks_train_by_steps(pipeline, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for argv, message in (
        ([], "give --steps"),
        (["--steps", "9", "--epochs", "2"], "--epochs does not apply"),
    ):
        with pytest.raises(SystemExit):
            pipeline.parse_args(argv)
        assert message in capsys.readouterr().err.splitlines()[-1]
    assert pipeline.parse_args(["--steps", "9"]).steps == 9


def test_synthetic_datasets_by_default(pipeline, tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    argv = ["--datasets", "2", "--episodes", "3", "--batch-size", "8", "--steps", "6"]
    assert run_main(pipeline, [*argv, "--log-indices", str(log)]) == 0
    out = capsys.readouterr().out
    assert "rank 0/1: step 6," in out and "over 2 datasets" in out
    steps = _read_log(log)
    assert [s["step"] for s in steps] == list(range(1, 7)) and {s["dataset"] for s in steps} <= {"ds0", "ds1"}
    written = tmp_path / "ds"  # the synthetic datasets are write_lerobot_dataset(N episodes, seed=i)
    for i in range(2):
        write_lerobot_dataset(written / f"ds{i}", num_episodes=3, seed=i)
    again = tmp_path / "again.jsonl"
    flags = root_flags({f"ds{i}": str(written / f"ds{i}") for i in range(2)})
    assert run_main(pipeline, [*flags, "--batch-size", "8", "--steps", "6", "--log-indices", str(again)]) == 0
    assert _read_log(again) == steps


@pytest.mark.slow
def test_mixture_pipeline_resumes_exactly_after_sigkill(pipeline, roots, tmp_path):
    common = [*root_flags(roots), "--epochs", "100", "--steps", "150"]
    common += ["--batch-size", "4", "--seed", "3", "--weight", "ds0=3"]
    ref_log, crash_log, resume_log = (
        tmp_path / "ref.jsonl",
        tmp_path / "crash.jsonl",
        tmp_path / "resume.jsonl",
    )
    assert run_main(pipeline, [*common, "--log-indices", str(ref_log)]) == 0  # the uninterrupted reference
    reference = _read_log(ref_log)
    assert len(reference) == 150 and {s["dataset"] for s in reference} == set(roots)
    assert reference[-1]["epoch"] > 2  # the run crosses passes of the mixture
    ckpt = tmp_path / "ckpt" / "mix.json"
    # The run to be killed hangs while logging step 43 (checkpoints every 5 steps, so the last one is at
    # step 40 and two steps after it are lost): the kill lands mid-run however loaded the machine is.
    hang = tmp_path / "hang_at_43.py"
    hang.write_text(
        "import importlib.util, json, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('mixture_pipeline', {str(SCRIPT)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "class HangingJson:\n"
        "    def __getattr__(self, name): return getattr(json, name)\n"
        "    def dumps(self, obj, *a, **k):\n"
        "        if isinstance(obj, dict) and obj.get('step') == 43: time.sleep(3600)\n"
        "        return json.dumps(obj, *a, **k)\n"
        "m.json = HangingJson()\n"
        "sys.exit(m.main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(hang), *common, "--checkpoint", str(ckpt), "--checkpoint-every", "5",
         "--log-indices", str(crash_log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while proc.poll() is None and len(_read_log(crash_log)) < 42 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # it is now stuck inside step 43
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    crashed = _read_log(crash_log)
    assert len(crashed) == 42, "the kill must land mid-run, inside step 43"
    saved = json.loads(ckpt.read_text())["step"]
    assert saved == 40
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *common, "--checkpoint", str(ckpt), "--resume", "--log-indices",
         str(resume_log)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert f"resumed from {ckpt} at step {saved}" in out.stdout
    effective = [s for s in crashed if s["step"] <= saved] + _read_log(resume_log)
    assert effective == reference


@pytest.mark.slow
def test_two_ranks_under_torchrun_resume_exactly(pipeline, roots, tmp_path, capsys):
    """Each rank's batches are its own mixer's (rank r of 2, built here with the library, not the
    script), before and after a resume by 2 ranks; 1 process refuses the 2-rank checkpoint."""
    flags = [*root_flags(roots), "--batch-size", str(BATCH), "--seed", "4", "--weight", "ds1=3"]
    ckpt, log = tmp_path / "mix.json", str(tmp_path / "log.rank{rank}.jsonl")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    for steps, resume in ((7, []), (30, ["--resume"])):
        proc = subprocess.run(
            [*torchrun, str(SCRIPT), *flags, "--steps", str(steps), "--checkpoint", str(ckpt),
             "--checkpoint-every", "3", "--log-indices", log, *resume],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resumed from" in proc.stdout
    for rank in range(2):
        graph = lerobot_mixture(
            roots, {"ds0": 1, "ds1": 3}, batch_size=BATCH, columns=["index"], seed=4, shuffle=True,
            permutation="feistel", rank=rank, world_size=2,
        )  # fmt: skip
        loader, want = Loader(graph), []
        while len(want) < 30:  # pass after pass, as the pipeline trains by steps
            for b in loader:
                want.append((b["dataset"], b["index"].tolist()))
                if len(want) == 30:
                    break
        got = [(s["dataset"], s["indices"]) for s in _read_log(Path(log.format(rank=rank)))]
        assert got == want, rank
    assert run_main(pipeline, [*flags, "--steps", "40", "--checkpoint", str(ckpt), "--resume"]) == 2
    assert "written by 2 rank(s), this run has 1" in capsys.readouterr().err
