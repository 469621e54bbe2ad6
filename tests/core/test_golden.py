"""Every order, state, fingerprint and seed is bit-identical to episode-sampler 0.2.0's.

``tests/fixtures/golden.json.gz`` was written once by ``tests/fixtures/make_golden.py`` from the
0.2.0 code (commit 0b23cc9, compiled kernel and numpy path agreeing), before the pure-Python
rewrite. It covers LeRobot's randperm order, the Feistel order, every unit order, sharding,
elastic restores, version-1 (0.1.0) and version-2 states, fingerprints, node batches and seeds.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from episode_sampler import EpisodeAwareSampler, EpisodeIndex, EpisodeSamplerNode, sample_seed
from tests.fixtures.make_golden import FROM, LENGTHS, TO  # the layouts the fixture was written from

GOLDEN = json.loads(
    gzip.decompress((Path(__file__).resolve().parents[1] / "fixtures" / "golden.json.gz").read_bytes())
)


pytestmark = pytest.mark.usefixtures("quiet_logs")  # the layout drops an episode on purpose


def make(layout, **kw):
    if layout == "gaps":
        return EpisodeAwareSampler(FROM, TO, drop_n_first_frames=2, drop_n_last_frames=3, **kw)
    return EpisodeAwareSampler.from_index(EpisodeIndex.from_lengths(LENGTHS, offset=5), **kw)


def _id(case):
    kw = case["kw"]
    return (
        f"{case['layout']}-{kw['permutation']}-{kw['order']}-{kw['shuffle']}-{kw['rank']}of{kw['world_size']}"
    )


@pytest.mark.parametrize("case", GOLDEN["orders"], ids=_id)
def test_orders(case):
    s = make(case["layout"], **case["kw"])
    for epoch, expected in case["epochs"].items():
        assert s.frame_indices(int(epoch)).tolist() == expected
        if epoch == "1":
            s.set_epoch(1)
            assert list(iter(s)) == expected


@pytest.mark.parametrize("case", GOLDEN["states"], ids=_id)
def test_states(case):
    s = make(case["layout"], **case["kw"])
    if case["head"] is not None:  # a state taken now is the very same dict
        s.set_epoch(2)
        it = iter(s)
        assert [next(it) for _ in range(len(case["head"]))] == case["head"]
        assert s.state_dict() == case["state"]
    restored = make(case["layout"], **case["kw"])
    restored.load_state_dict(case["state"])
    assert list(iter(restored)) == case["rest"]


@pytest.mark.parametrize("case", GOLDEN["elastic"], ids=_id)
def test_elastic(case):
    for r, expected in enumerate(case["ranks"]):
        s = make(case["layout"], **dict(case["kw"], rank=r, world_size=3))
        s.load_state_dict(case["state"])
        assert list(iter(s)) == expected


def test_fingerprints():
    fp = GOLDEN["fingerprints"]
    assert make("gaps").fingerprint == fp["gaps"]
    assert make("lengths").fingerprint == fp["lengths"]
    s = EpisodeAwareSampler(FROM, TO, absolute_to_relative_idx=list(range(1000, 1700)), shuffle=True, seed=3)
    assert s.state_dict() == fp["relabel_state"]
    assert s.frame_indices(0).tolist() == fp["relabel_epoch0"]
    big = EpisodeIndex.from_lengths(np.full(10**6, 10**6, dtype=np.int64))
    assert big.fingerprint == fp["big"]


@pytest.mark.parametrize("order", ["frames", "episodes", "blocks"])
def test_huge_feistel(order):
    big = EpisodeIndex.from_lengths(np.full(10**6, 10**6, dtype=np.int64))
    s = EpisodeAwareSampler.from_index(
        big,
        shuffle=True,
        seed=2**64 - 1,
        permutation="feistel",
        order=order,
        block_size=1000 if order == "blocks" else None,
        rank=5,
        world_size=8,
    )
    expected = GOLDEN["big"][order]
    assert s.frame_indices(3, 0, 50).tolist() == expected["head"]
    assert s.frame_indices(3, 10**11, 10**11 + 50).tolist() == expected["far"]


def test_seeds():
    args = ((0, 0, 0), (2**64 - 1, 7, 123456), (42, 3, 10**15))
    assert [sample_seed(*a) for a in args] == GOLDEN["seeds"]["scalar"]
    assert sample_seed(42, 1, np.arange(20)).tolist() == GOLDEN["seeds"]["array"]


def _jsonable(x):
    return json.loads(json.dumps(x))


@pytest.mark.parametrize(
    "case", GOLDEN["nodes"], ids=lambda c: f"seed{c['emit_seed']}-batch{c['batch_size']}"
)
def test_nodes(case):
    def build():
        return EpisodeSamplerNode(
            FROM,
            TO,
            shuffle=True,
            seed=11,
            permutation="feistel",
            order="blocks",
            block_size=4,
            rank=0,
            world_size=2,
            batch_size=case["batch_size"],
            emit_seed=case["emit_seed"],
        )

    node = build()
    node.reset(None)
    assert _jsonable([node.next() for _ in range(9)]) == case["items"]
    assert node.get_state() == case["state"]
    restored = build()
    restored.reset(case["state"])
    rest = []
    with pytest.raises(StopIteration):
        while True:
            rest.append(restored.next())
    assert _jsonable(rest) == case["rest"]
    assert restored.get_state() == case["end_state"]
