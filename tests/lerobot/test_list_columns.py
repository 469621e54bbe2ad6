"""List columns to numpy without ``flatten()`` (whose first call imports ``pyarrow.compute``, about 0.2 s
of a fresh process's first batch): rows equal the Python lists they were built from, for sliced and
multi-chunk arrays, and a fresh process reads a batch without importing ``pyarrow.compute``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from episode_sampler.lerobot.columns import describe, to_numpy

CASES = [
    (pa.list_(pa.float32(), 3), [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]),
    (pa.list_(pa.list_(pa.int64(), 2), 2), [[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]]]),
    (pa.list_(pa.float64()), [[1, 2], [3, 4], [5, 6]]),
    (pa.large_list(pa.int32()), [[1], [2], [3], [4]]),
]


@pytest.mark.parametrize(("type_", "rows"), CASES, ids=lambda c: str(c)[:30])
@pytest.mark.parametrize("cut", [(0, None), (1, None), (1, 1), (0, 0), (2, 1)])
def test_list_rows_of_a_slice(type_: pa.DataType, rows: list, cut: tuple[int, int | None]) -> None:
    start, length = cut
    arr = pa.array(rows, type_).slice(start, length)
    expected = rows[start : None if length is None else start + length]
    got = to_numpy(describe("x", type_), pa.chunked_array([arr], type=type_), Path("f.parquet"))
    assert got.shape[0] == len(expected)
    np.testing.assert_array_equal(got, np.array(expected, dtype=got.dtype).reshape(got.shape))


@pytest.mark.parametrize(("type_", "rows"), CASES, ids=lambda c: str(c)[:30])
def test_list_rows_of_several_chunks(type_: pa.DataType, rows: list) -> None:
    arr = pa.array(rows, type_)
    chunked = pa.chunked_array([arr.slice(0, 1), arr.slice(1, 0), arr.slice(1)], type=type_)
    got = to_numpy(describe("x", type_), chunked, Path("f.parquet"))
    np.testing.assert_array_equal(got, np.array(rows, dtype=got.dtype))


def test_nulls_inside_fixed_lists_are_refused() -> None:
    type_ = pa.list_(pa.float32(), 2)
    arr = pa.array([[1.0, None], [3.0, 4.0]], type_)
    with pytest.raises(ValueError, match="'x' of 'f.parquet' holds null values"):
        to_numpy(describe("x", type_), pa.chunked_array([arr]), Path("f.parquet"))


def test_a_fresh_process_reads_a_batch_without_pyarrow_compute(tmp_path: Path) -> None:
    from episode_sampler import write_lerobot_dataset

    write_lerobot_dataset(tmp_path / "ds", num_episodes=6, min_length=5, max_length=9, episodes_per_file=2)
    code = (
        "import sys\n"
        "from episode_sampler import EpisodeAwareSampler, LeRobotFrames\n"
        f"ds = LeRobotFrames({str(tmp_path / 'ds')!r})\n"
        "s = EpisodeAwareSampler.from_lerobot(ds, shuffle=True, seed=0)\n"
        "batch = ds.get_batch(list(iter(s))[:8])\n"
        "assert batch['observation.state'].shape == (8, 6)\n"
        "print(sorted(m for m in ('pyarrow.compute', 'pandas') if m in sys.modules))\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
