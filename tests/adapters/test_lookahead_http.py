"""LookAhead end to end over real HTTP: a LeRobot v3 dataset with a camera served by nginx behind the
latency proxy, read by StatefulDataLoader workers (processes) and a torchdata ParallelMapper while the
look-ahead fetches ahead into the shared on-disk cache: items equal the local read, checkpoints equal
those of a run without look-ahead, a resume is exact, and the workers' reads find their blocks cached."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch
from torchdata.nodes import Loader, ParallelMapper
from torchdata.stateful_dataloader import StatefulDataLoader

from episode_sampler import EpisodeAwareSampler, EpisodeSamplerNode, LeRobotFrames, write_lerobot_dataset
from episode_sampler.lookahead import LookAhead
from tests.helpers.latency_proxy import LatencyProxy
from tests.helpers.servers import NGINX, Nginx

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NGINX is None, reason="needs nginx"),
    pytest.mark.filterwarnings("ignore:.*set_vital"),
]
B = 8
CAM = "observation.images.top"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("la-http") / "ds"
    write_lerobot_dataset(root, 6, 15, 25, seed=3, episodes_per_file=2, cameras={CAM: (64, 64)})
    with Nginx(tmp_path_factory.mktemp("nginx")) as nginx, LatencyProxy(nginx.port, 0.01) as proxy:
        yield root, proxy.url_for(nginx.serve(root, "ds")), proxy


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def diff(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        return [d for k in keys for d in diff(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _run(url, cache: Path, ahead: bool, stop: int, state=None):
    frames = LeRobotFrames(url, cache_dir=cache, cache_bytes=1 << 30, return_uint8=True, video_backend="pyav")
    sampler = EpisodeAwareSampler.from_index(
        frames.episodes, shuffle=True, seed=5, order="blocks", block_size=4
    )
    loader = StatefulDataLoader(
        frames, batch_size=B, sampler=sampler, num_workers=2, generator=torch.Generator().manual_seed(0)
    )
    if state is not None:
        loader.load_state_dict(json.loads(json.dumps(state)))
    la = LookAhead(sampler, frames, window=6 * B, batch_size=B, threads=8)
    if ahead:
        la.start()
        assert la.wait(60)
    out, states = [], []
    try:
        for k, batch in enumerate(loader):
            out.append(batch)
            states.append(loader.state_dict())
            if k + 1 == stop:
                break
    finally:
        la.close()
    return out, states, la.stats()


def test_dataloader_workers_items_states_resume(served, tmp_path):
    root, url, proxy = served
    local = LeRobotFrames(root, return_uint8=True, video_backend="pyav")
    plain, plain_states, _ = _run(url, tmp_path / "c1", False, 8)
    ahead, ahead_states, stats = _run(url, tmp_path / "c2", True, 8)
    assert stats["errors"] == 0 and stats["fetches_done"] > 0
    assert diff(plain_states, ahead_states) == []
    for p, a in zip(plain, ahead):
        assert same(p, a)
        assert same(a, local.get_batch(a["index"].numpy()))
    rest, _, _ = _run(url, tmp_path / "c2", True, 10**9, state=ahead_states[3])
    full, _, _ = _run(url, tmp_path / "c2", False, 10**9)
    assert len(rest) == len(full) - 4
    assert all(same(r, f) for r, f in zip(rest, full[4:]))


def test_parallel_mapper_reads_hit_the_cache(served, tmp_path):
    """With the look-ahead, the mapper threads' reads find their blocks in the cache: the requests made
    by threads other than the look-ahead's are few (every block is downloaded once either way)."""
    root, url, _ = served
    frames = LeRobotFrames(url, cache_dir=tmp_path / "c", cache_bytes=1 << 30, return_uint8=True)
    source = frames.store.source
    read = source.read
    by_thread: list[str] = []

    def counting_read(rel, start, stop):  # type: ignore[no-untyped-def]
        by_thread.append(threading.current_thread().name)
        return read(rel, start, stop)

    source.read = counting_read
    node = EpisodeSamplerNode.from_index(frames.episodes, shuffle=True, seed=1, batch_size=B)
    loader = Loader(ParallelMapper(node, frames.get_batch, num_workers=2, method="thread"))
    local = LeRobotFrames(root, return_uint8=True)
    with LookAhead(node, frames, window=8 * B, batch_size=B, threads=8) as la:
        assert la.wait(60)
        for batch in loader:
            assert same(batch, local.get_batch(batch["index"].numpy()))
            time.sleep(0.02)
        stats = la.stats()
    assert stats["errors"] == 0
    ahead = [n for n in by_thread if n.startswith("episode-sampler-")]
    foreground = [n for n in by_thread if not n.startswith("episode-sampler-")]
    assert len(ahead) > 0 and len(foreground) <= 3, (len(ahead), foreground)
