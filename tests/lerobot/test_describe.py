"""`episode_sampler.lerobot.describe`: a dataset in words (what `episode-sampler inspect DATASET_DIR` prints),
video keys included; the command itself is tested in tests/cli/test_inspect.py."""

from __future__ import annotations

import json

from episode_sampler.lerobot import TASKS, write_lerobot_dataset
from episode_sampler.lerobot.describe import describe_dataset


def value(lines: list[str], label: str) -> str:
    return next(line[14:] for line in lines if line.startswith(label))


def test_describe_numeric_dataset(tmp_path):
    eps = write_lerobot_dataset(tmp_path, 7, 4, 9, seed=1, episodes_per_file=3)
    lines = describe_dataset(tmp_path)
    lengths = eps.lengths
    assert value(lines, "episodes") == (
        f"7 episodes, {int(lengths.sum())} frames (length {lengths.min()}..{lengths.max()}, "
        f"mean {lengths.mean():.1f})"
    )
    assert value(lines, "files") == "3 data files, 2 episode-table files"  # 2 x 3 episodes per table file
    assert value(lines, "features").split() == ["observation.state", "float32", "[6]"]
    assert value(lines, "cameras") == "none (no video or image features)"
    assert value(lines, "tasks") == "3: " + ", ".join(repr(t) for t in TASKS)
    assert value(lines, "stats").startswith("meta/stats.json: 7 features (min, max, mean, std, count, q01")


def test_describe_shows_video_keys(tmp_path):
    write_lerobot_dataset(tmp_path, 3, 4, 4, seed=0)
    info_path = tmp_path / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["features"]["observation.images.top"] = {
        "dtype": "video",
        "shape": [64, 80, 3],
        "names": ["height", "width", "channels"],
        "info": {"video.codec": "av1", "video.pix_fmt": "yuv420p", "video.fps": 30},
    }
    info["features"]["observation.images.wrist"] = {"dtype": "image", "shape": [3, 32, 32], "names": None}
    info_path.write_text(json.dumps(info))
    for f in range(2):
        path = tmp_path / "videos" / "observation.images.top" / "chunk-000" / f"file-{f:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 2**19)
    lines = describe_dataset(tmp_path)
    i = next(i for i, line in enumerate(lines) if line.startswith("cameras"))
    assert lines[i].split(None, 1)[1].split() == [
        "observation.images.top",
        "video",
        "64x80x3,",
        "av1",
        "yuv420p,",
        "30",
        "fps,",
        "2",
        "files,",
        "1.0",
        "MiB",
    ]
    assert lines[i + 1].split() == ["observation.images.wrist", "image", "3x32x32"]
    assert all("observation.images" not in line for line in lines[:i])  # not listed as plain features


def test_describe_a_written_camera_dataset(tmp_path):
    write_lerobot_dataset(tmp_path, 2, 3, 3, seed=0, cameras={"observation.images.top": (64, 72)})
    lines = describe_dataset(tmp_path)
    camera = value(lines, "cameras")
    assert camera.startswith("observation.images.top  video 64x72x3, av1 yuv420p, 30 fps, 1 file, ")
    assert "observation.images.top" not in value(lines, "features")
