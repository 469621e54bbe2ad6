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
from episode_sampler.nodes import EpisodeSamplerNode

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.mark.slow
def test_mixture_pipeline_resumes_exactly_after_sigkill(tmp_path):
    script = ROOT / "pipelines" / "mixture.py"
    data = tmp_path / "data"
    common = [sys.executable, str(script), "--synthetic", "3", "--data-dir", str(data), "--steps", "150"]
    common += ["--batch-size", "4", "--seed", "3", "--weight", "ds0=3"]
    ref_log, crash_log, resume_log = (
        tmp_path / "ref.jsonl",
        tmp_path / "crash.jsonl",
        tmp_path / "resume.jsonl",
    )
    spec = importlib.util.spec_from_file_location("mixture_pipeline", script)
    pipeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline)  # the uninterrupted reference, in this process
    assert pipeline.main([*common[2:], "--log-indices", str(ref_log)]) == 0
    reference = _read_log(ref_log)
    assert len(reference) == 150 and len({s["dataset"] for s in reference}) == 3
    ckpt = tmp_path / "ckpt" / "mix.json"
    # The run to be killed hangs while logging step 43 (checkpoints every 5 steps, so the last one is at
    # step 40 and two steps after it are lost): the kill lands mid-run however loaded the machine is.
    hang = tmp_path / "hang_at_43.py"
    hang.write_text(
        "import importlib.util, json, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('mixture_pipeline', {str(script)!r})\n"
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
        [sys.executable, str(hang), *common[2:], "--checkpoint", str(ckpt), "--checkpoint-every", "5",
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
        [*common, "--checkpoint", str(ckpt), "--log-indices", str(resume_log)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"resumed from {ckpt} at step {saved}" in out.stdout
    effective = [s for s in crashed if s["step"] <= saved] + _read_log(resume_log)
    assert effective == reference
