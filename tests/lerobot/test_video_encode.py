"""``episode_sampler.lerobot.video_encode``: the frame-index pattern each synthetic frame shows, and the
encoder's LeRobot settings (AV1, ``g=2``), read back with PyAV."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from episode_sampler.lerobot.video_encode import camera_frame, encode_frames, read_frame_index
from tests.helpers.video_dataset import FPS


# ---------------------------------------------------------------------------------------------- pattern
def test_camera_frame_pattern_roundtrip_and_rejects_garbage():
    for index in (0, 1, 5, 2**20 + 3, 2**32 - 1):
        img = camera_frame(index, 64, 80)
        assert img.shape == (64, 80, 3) and img.dtype == np.uint8
        assert read_frame_index(img) == index
        assert read_frame_index(torch.from_numpy(img).permute(2, 0, 1).float() / 255) == index
    with pytest.raises(ValueError, match="pattern"):
        read_frame_index(np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="at least 64"):
        camera_frame(0, 32, 64)


def test_encode_frames_is_lerobot_av1_g2(tmp_path):
    path = tmp_path / "v.mp4"
    encode_frames(path, [camera_frame(i, 64, 64) for i in range(9)], FPS)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name in ("libdav1d", "av1") and s.codec.canonical_name == "av1"
        assert s.pix_fmt == "yuv420p" and (s.width, s.height) == (64, 64) and int(s.base_rate) == FPS
        frames = list(c.decode(s))
    assert [f.key_frame for f in frames] == [i % 2 == 0 for i in range(9)]  # g=2
    assert [read_frame_index(f.to_ndarray(format="rgb24")) for f in frames] == list(range(9))
