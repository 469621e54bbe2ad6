"""Arrow columns to numpy without pyarrow's pandas layer: values equal a plain Python reference, and a
fresh process that opens a dataset and reads a batch never imports pandas (its import costs a fresh
process, and every DataLoader worker that had not imported it, 0.3 to 0.5 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from episode_sampler.lerobot.columns import numbers, strings

TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint64(), pa.float16(), pa.float32()]
TYPES += [pa.float64(), pa.bool_()]


def reference(values: list, t: pa.DataType) -> np.ndarray:
    dtype = bool if pa.types.is_boolean(t) else t.to_pandas_dtype()
    return np.array(values, dtype=dtype)


def values_of(t: pa.DataType, n: int) -> list:
    if pa.types.is_boolean(t):
        return [i % 3 == 0 for i in range(n)]
    if pa.types.is_floating(t):
        return [i / 4 for i in range(n)]
    return [i % 100 for i in range(n)]


@pytest.mark.parametrize("t", TYPES, ids=str)
@pytest.mark.parametrize("offset", [0, 1, 5, 13])
def test_numbers_of_a_sliced_array(t: pa.DataType, offset: int) -> None:
    values = values_of(t, 40)
    got = numbers(pa.array(values, t).slice(offset, 20))
    expected = reference(values[offset : offset + 20], t)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("t", TYPES, ids=str)
def test_numbers_of_chunked_arrays(t: pa.DataType) -> None:
    values = values_of(t, 30)
    chunked = pa.chunked_array([pa.array(values[:7], t), pa.array(values[7:7], t), pa.array(values[7:], t)])
    np.testing.assert_array_equal(numbers(chunked), reference(values, t))
    empty = numbers(pa.chunked_array([], t))
    assert empty.shape == (0,) and empty.dtype == reference([], t).dtype


def test_numbers_with_nulls_and_other_types_fall_back_to_arrow() -> None:
    got = numbers(pa.array([1.0, None, 3.0]))
    assert got[0] == 1.0 and np.isnan(got[1]) and got[2] == 3.0
    stamps = pa.array([0, 86_400_000_000], pa.timestamp("us"))
    assert numbers(stamps).tolist() == stamps.to_numpy().tolist()


def test_strings() -> None:
    got = strings(pa.chunked_array([pa.array(["a", "bc"]), pa.array(["", "déjà"])]))
    assert got.dtype == object and got.tolist() == ["a", "bc", "", "déjà"]


def test_opening_a_dataset_and_reading_a_batch_does_not_import_pandas(tmp_path: Path) -> None:
    from episode_sampler import write_lerobot_dataset

    write_lerobot_dataset(tmp_path / "ds", num_episodes=6, min_length=5, max_length=9, episodes_per_file=2)
    code = (
        "import sys\n"
        "from episode_sampler import EpisodeAwareSampler, LeRobotFrames\n"
        f"ds = LeRobotFrames({str(tmp_path / 'ds')!r})\n"
        "s = EpisodeAwareSampler.from_lerobot(ds, shuffle=True, seed=0)\n"
        "batch = ds.get_batch(list(iter(s))[:8])\n"
        "item = ds[3]\n"
        "assert batch['task'] and item['task']\n"
        "print('pandas' in sys.modules)\n"
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
    assert proc.stdout.strip() == "False"
