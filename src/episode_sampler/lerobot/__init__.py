"""LeRobot v3 datasets on disk or remote (HTTP, S3, the Hugging Face Hub), read with pyarrow, and small
synthetic ones written for tests.

Layout (``codebase_version`` ``v3.x``)::

    root/meta/info.json
    root/meta/episodes/chunk-*/file-*.parquet   one row per episode
    root/data/chunk-*/file-*.parquet            one row per frame, whole episodes, sorted by ``index``
    root/videos/<key>/chunk-*/file-*.mp4        one camera, many episodes per file (AV1)

Modules, in the order data flows through them:

- :mod:`.storage`: where a dataset's files are: one :class:`~.storage.Store` for every file access
  (local paths, or a remote source read by byte ranges through the block cache).
- :mod:`.remote_source`, :mod:`.block_cache`, :mod:`.remote_file`: remote roots, the shared on-disk
  cache of their blocks, and seekable file objects over them.
- :mod:`.meta`: dataset-level metadata (``meta/info.json``).
- :mod:`.parquet_io`: Parquet reads whose errors name the file.
- :mod:`.tasks`: task strings (``meta/tasks.parquet``), read and written in LeRobot's layout.
- :mod:`.stats`: normalization statistics as LeRobot computes them (``meta/stats.json``, episode columns).
- :mod:`.episode_table`: the episode table -> :class:`~episode_sampler.core.layout.EpisodeIndex`.
- :mod:`.columns`: how an Arrow column converts to numpy rows.
- :mod:`.data_files`: frame reads from the Parquet data files (file/row lookup, column cache, gathers).
- :mod:`.video_reader`: camera frames of a batch: which file and time, grouped per (camera, file).
- :mod:`.video_decode`: decoding a file at given times (PyAV / torchcodec), bounded decoder cache.
- :mod:`.frames`: :class:`LeRobotFrames`, items and ``delta_indices`` windows collated per batch.
- :mod:`.writer`: :func:`write_lerobot_dataset`, deterministic datasets for tests and examples.
- :mod:`.video_encode`: its cameras, encoded and laid out as LeRobot does; pixels that show the index.
"""

from .episode_table import read_episode_index
from .frames import LeRobotFrames
from .meta import read_info
from .stats import read_stats
from .tasks import read_tasks
from .video_decode import FrameTimestampError
from .writer import TASKS, write_lerobot_dataset

__all__ = [
    "TASKS",
    "FrameTimestampError",
    "LeRobotFrames",
    "read_episode_index",
    "read_info",
    "read_stats",
    "read_tasks",
    "write_lerobot_dataset",
]
