"""Arrow -> numpy without pyarrow's pandas-based converter (``columns.numeric_numpy``), and a dataset
opened and read without importing pandas or pyarrow.compute (pyarrow imports pandas on the first
``to_numpy`` or ``pq.read_table``, pyarrow.compute on the first ``flatten()``: up to a second of
start-up for nothing)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from episode_sampler.lerobot import write_lerobot_dataset
from episode_sampler.lerobot.columns import numeric_numpy


@pytest.mark.parametrize(
    "type_",
    [pa.int8(), pa.int32(), pa.int64(), pa.uint16(), pa.float16(), pa.float32(), pa.float64(), pa.bool_()],
)
def test_numeric_numpy_equals_the_values(type_):
    rng = np.random.default_rng(0)
    if pa.types.is_boolean(type_):
        values = (rng.random(70) > 0.5).tolist()
    elif pa.types.is_floating(type_):
        values = [float(v) for v in rng.integers(-100, 100, 70) / 4]
    else:
        values = [int(v) for v in rng.integers(0, 100, 70)]
    arr = pa.array(values, type_)
    cases = {
        "array": (arr, values),
        "slice": (arr.slice(13, 29), values[13:42]),  # a non-zero offset (bit offset for bools)
        "chunks": (
            pa.chunked_array([arr.slice(0, 5), arr.slice(5, 0), arr.slice(9, 30)]),
            values[:5] + values[9:39],
        ),
        "empty": (pa.chunked_array([], type_), []),
    }
    for name, (data, expected) in cases.items():
        got = numeric_numpy(data)
        assert got.tolist() == expected, name
        assert got.dtype == (np.bool_ if pa.types.is_boolean(type_) else type_.to_pandas_dtype()), name


def test_numeric_numpy_falls_back_for_nulls_and_other_types():
    assert numeric_numpy(pa.array([1, None, 3])).tolist()[0] == 1  # nulls: pyarrow's converter
    assert numeric_numpy(pa.array(["a", "b"])).tolist() == ["a", "b"]


def test_list_columns_of_sliced_and_chunked_arrays():
    """Fixed-size and variable lists are read from their child values, sliced as the parent is."""
    from episode_sampler.lerobot.columns import describe, to_numpy

    rows = [[float(i), float(i) + 0.5] for i in range(10)]
    for type_ in (pa.list_(pa.float32(), 2), pa.list_(pa.float32())):
        arr = pa.array(rows, type_)
        data = pa.chunked_array([arr.slice(1, 3), arr.slice(6, 4)])
        got = to_numpy(describe("x", type_), data, "f")
        np.testing.assert_array_equal(got, np.array(rows[1:4] + rows[6:10], np.float32))
    nested = pa.array([[[i, i + 1], [i + 2, i + 3]] for i in range(5)], pa.list_(pa.list_(pa.int64(), 2), 2))
    got = to_numpy(describe("n", nested.type), pa.chunked_array([nested.slice(2, 3)]), "f")
    assert got.tolist() == [[[i, i + 1], [i + 2, i + 3]] for i in range(2, 5)]


def test_opening_and_reading_a_dataset_imports_no_pandas(tmp_path):
    pytest.importorskip("pandas")  # only meaningful where pandas is installed
    root = tmp_path / "ds"
    write_lerobot_dataset(root, 6, 3, 5, episodes_per_file=2)
    code = textwrap.dedent(
        f"""
        import sys
        from episode_sampler.lerobot import LeRobotFrames
        for cache in (None, 0):  # whole files cached, and row-group reads
            ds = LeRobotFrames(
                {str(root)!r}, delta_indices={{"action": [-1, 0, 1]}}, column_cache_bytes=cache
            )
            batch = ds.get_batch(list(range(len(ds))))
            assert batch["task"][0], batch
        print("pandas" in sys.modules, "pyarrow.compute" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False", out.stderr
