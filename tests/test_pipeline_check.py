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


def test_missing_sampler_node_and_bad_argument():
    from torchdata.nodes import IterableWrapper

    assert "no EpisodeSamplerNode" in check_exactness(Batcher(IterableWrapper(range(5)), 2), warn=False)[0]
    with pytest.raises(TypeError, match="Loader or BaseNode"):
        check_exactness([1, 2])
