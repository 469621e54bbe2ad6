import pytest
from torchdata.nodes import Batcher, Loader, Mapper, ParallelMapper, Prefetcher

from episode_sampler import EpisodeSamplerNode
from episode_sampler.pipeline_check import check_exactness


def node():
    return EpisodeSamplerNode([0, 10], [10, 30], shuffle=True, permutation="feistel", rank=0, world_size=1)


def test_exact_graph_has_no_problem():
    graph = Prefetcher(Batcher(ParallelMapper(node(), lambda x: x, num_workers=2, in_order=True), 4), 2)
    assert check_exactness(Loader(graph)) == []
    assert check_exactness(Mapper(node(), lambda x: x), elastic=True) == []


def test_out_of_order_mapper_is_reported_and_warned():
    graph = Batcher(ParallelMapper(node(), lambda x: x, num_workers=2, in_order=False), 4)
    with pytest.warns(UserWarning, match="in_order=False"):
        problems = check_exactness(Loader(graph))
    assert len(problems) == 1


def test_snapshot_frequency_only_matters_for_elastic_resume():
    graph = Prefetcher(
        ParallelMapper(node(), lambda x: x, num_workers=2, snapshot_frequency=7), 2, snapshot_frequency=3
    )
    assert check_exactness(graph, warn=False) == []
    problems = check_exactness(graph, elastic=True, warn=False)
    assert [p.split("(")[0] for p in problems] == ["Prefetcher", "ParallelMapper"]
    assert "at root.source" in problems[1]


def test_missing_sampler_node_and_bad_argument():
    from torchdata.nodes import IterableWrapper

    assert "no EpisodeSamplerNode" in check_exactness(Batcher(IterableWrapper(range(5)), 2), warn=False)[0]
    with pytest.raises(TypeError, match="Loader or BaseNode"):
        check_exactness([1, 2])


# ---------------------------------------------------------------- the whole graph (issue #9 item 5)
from torchdata.nodes import (  # noqa: E402
    BaseNode,
    IterableWrapper,
    MultiNodeWeightedSampler,
    PinMemory,
    StopCriteria,
)


def _mix(a, b):
    return MultiNodeWeightedSampler(
        {"a": a, "b": b}, {"a": 0.5, "b": 0.5}, StopCriteria.ALL_DATASETS_EXHAUSTED, rank=0, world_size=1
    )


def test_mixture_sources_are_walked():
    bad = ParallelMapper(node(), lambda x: x, num_workers=2, in_order=False)
    graph = Prefetcher(_mix(IterableWrapper(range(3)), bad), 2)
    problems = check_exactness(Loader(graph), warn=False)
    assert len(problems) == 1
    assert "in_order=False" in problems[0] and "source_nodes['b']" in problems[0]
    # the sampler node inside a mixture counts as found
    assert check_exactness(_mix(node(), IterableWrapper(range(3))), warn=False) == []


def test_elastic_mixture_is_reported():
    graph = _mix(node(), node())
    problems = check_exactness(graph, elastic=True, warn=False)
    assert len(problems) == 1 and "elastic restore of a mixture cannot be exact" in problems[0]
    assert check_exactness(graph, elastic=False, warn=False) == []


class Pair(BaseNode):
    """A custom node holding its children in a private attribute and a tuple."""

    def __init__(self, first, second):
        super().__init__()
        self._kids = (first, second)
        self.again = self  # a cycle

    def reset(self, initial_state=None):
        super().reset(initial_state)

    def next(self):
        raise StopIteration

    def get_state(self):
        return {}


def test_any_base_node_attribute_is_walked_and_cycles_are_guarded():
    bad = Batcher(ParallelMapper(node(), lambda x: x, num_workers=2, in_order=False), 2)
    problems = check_exactness(Pair(IterableWrapper(range(2)), bad), warn=False)
    assert len(problems) == 1 and "root._kids[1].source" in problems[0]
    shared = node()
    assert check_exactness(Pair(shared, shared), warn=False) == []


class _CpuPinMemory(PinMemory):
    """PinMemory as the graph walker sees it: its constructor needs CUDA, which CI lacks, so this test
    double sets the two attributes the check reads (no pinning is done or claimed)."""

    def __init__(self, source, snapshot_frequency):
        BaseNode.__init__(self)
        self.source = source
        self.snapshot_frequency = snapshot_frequency


def test_pin_memory_snapshot_frequency_is_flagged_like_prefetcher():
    graph = _CpuPinMemory(Batcher(node(), 2), snapshot_frequency=4)
    assert check_exactness(graph, warn=False) == []
    (problem,) = check_exactness(graph, elastic=True, warn=False)
    assert problem.startswith("_CpuPinMemory(snapshot_frequency=4) at root")


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="PinMemory needs CUDA")
def test_real_pin_memory_is_flagged():  # pragma: no cover - CUDA only
    (problem,) = check_exactness(
        PinMemory(Batcher(node(), 2), snapshot_frequency=4), elastic=True, warn=False
    )
    assert problem.startswith("PinMemory(snapshot_frequency=4)")
