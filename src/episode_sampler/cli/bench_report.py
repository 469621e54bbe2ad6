"""What ``episode-sampler bench`` concludes and prints: the recommendation, the table, the JSON document.

JSON output (``--json PATH``, or ``--json -`` for stdout), schema ``"episode-sampler-bench/1"``::

    {
      "schema": "episode-sampler-bench/1",
      "dataset": {"root", "episodes", "frames", "min_episode_length", "max_episode_length",
                  "cameras": {key: [height, width]}, "columns": [names read per sample]},
      "settings": {"batch_size", "seconds", "rounds", "workers": [..], "block_sizes": [..],
                   "dropped_block_sizes": [..] (longer than every episode), "uint8",
                   "video_backend": "pyav" | "torchcodec" | null (no cameras), "seed",
                   "threshold": 0.9},
      "machine": {"cpu_count", "load_start": [1, 5, 15 min] | null, "load_end": .. | null,
                  "python", "torch", "episode_sampler"},
      "uniform_same_episode_share": float,      # batch-mate pairs from one episode, uniform shuffle
      "runs": [{
        "order": "frames" | "blocks", "block_size": int | null, "workers": int,
        "samples_per_s": float,                 # from the first batch on: timed_samples / timed_seconds
        "samples_per_s_rounds": [float],        # the same, per round (its spread shows the noise)
        "timed_samples", "timed_batches", "timed_seconds", "epochs_started",  # summed over rounds
        "cpu_seconds": float | null,            # this process + its workers over timed_seconds (Linux)
        "samples_per_cpu_s": float | null,      # timed_samples / cpu_seconds: do workers waste CPU?
        "setup_s": float,                       # LeRobotFrames + sampler + DataLoader, after imports
        "first_batch_s": float,                 # set-up + first batch (worker start-up included);
                                                # both medians over the rounds
        "delivered_bytes_per_sample": float,    # bytes of the batch tensors
        "decode": null | {                      # null: no cameras (Parquet only, read memory-mapped)
          "backend", "cameras", "files_opened",
          "packets_per_sample", "packet_bytes_per_sample",   # compressed bytes fed to the decoder
          "frames_decoded_per_sample_camera", "seeks_per_sample"},  # these four null with torchcodec
        "same_episode_share": float,            # of this order at this batch size
        "fraction_of_best": float}],
      "recommendation": {"order", "block_size", "workers", "samples_per_s", "fraction_of_best",
                         "same_episode_share", "text": "one line"},
      "first_batch_fresh_process": null | {"order", "block_size", "workers", "process_start_s",
                         "import_s", "setup_s", "first_batch_s", "process_to_first_batch_s"}
    }

Seconds are wall-clock seconds; every ``*_per_sample`` counts all samples read, the first batches too.
Each setting is measured in ``rounds`` rounds of ``seconds / rounds``, settings interleaved (every other
round in reverse order), each round with a freshly built dataset, sampler and loader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA = "episode-sampler-bench/1"
THRESHOLD = 0.9  # the recommendation: the cheapest setting reaching this fraction of the best samples/s


def order_label(block_size: int | None) -> str:
    return "frames" if block_size is None else f"blocks of {block_size}"


def recommend(runs: Sequence[Mapping[str, Any]], threshold: float = THRESHOLD) -> dict[str, Any]:
    """The setting to use: among the runs within ``threshold`` of the best samples/s, the one with the
    smallest shuffled unit (``order="frames"`` counts as 1 frame: the best shuffle), then the fewest
    workers (the least memory and CPU).

    Raises:
        ValueError: no runs, or no run read anything.
    """
    if not runs:
        raise ValueError("runs is empty: nothing was measured")
    best = max(float(r["samples_per_s"]) for r in runs)
    if best <= 0:
        raise ValueError("no run delivered a sample after its first batch")
    ok = [r for r in runs if float(r["samples_per_s"]) >= threshold * best]
    pick = min(ok, key=lambda r: (1 if r["block_size"] is None else int(r["block_size"]), int(r["workers"])))
    return {
        "order": pick["order"],
        "block_size": pick["block_size"],
        "workers": pick["workers"],
        "samples_per_s": float(pick["samples_per_s"]),
        "fraction_of_best": float(pick["samples_per_s"]) / best,
        "same_episode_share": pick.get("same_episode_share"),
    }


def recommendation_lines(rec: Mapping[str, Any], uniform_share: float, batch_size: int) -> list[str]:
    """The recommendation in words: the setting, then the shuffle-quality trade-off in one line."""
    if rec["block_size"] is None:
        code = 'order="frames"'
    else:
        code = f'order="blocks", block_size={rec["block_size"]}'
    lines = [
        f"recommended  EpisodeAwareSampler(..., {code}), DataLoader(num_workers={rec['workers']}): "
        f"{rec['samples_per_s']:,.0f} samples/s, {rec['fraction_of_best']:.0%} of the best",
        f"             (the smallest shuffled unit, then the fewest workers, within {THRESHOLD:.0%} of "
        "the best samples/s)",
    ]
    share = rec.get("same_episode_share")
    if share is not None:
        if rec["block_size"] is None:
            what = "as a uniform shuffle does"
        else:
            what = f'against {uniform_share:.1%} for order="frames" (a uniform shuffle)'
        lines.append(
            f"shuffle      {share:.1%} of batch-mate pairs (batch size {batch_size}) come from the same "
            f"episode, {what}"
        )
    return lines


def human_bytes(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x < 1024:
        return f"{x:.0f} B"
    if x < 1024**2:
        return f"{x / 1024:.1f} KiB"
    return f"{x / 1024**2:.1f} MiB"


NOISY = 1.25  # rounds of one setting further apart than this: say that the machine is busy


def noise_lines(runs: Sequence[Mapping[str, Any]], load: Sequence[float] | None) -> list[str]:
    """A note when the rounds of a setting disagree by more than :data:`NOISY` (empty otherwise)."""
    worst = 1.0
    for r in runs:
        rates = [float(x) for x in r.get("samples_per_s_rounds") or []]
        if len(rates) > 1 and min(rates) > 0:
            worst = max(worst, max(rates) / min(rates))
    if worst <= NOISY:
        return []
    busy = f" (load average {load[0]:.2f})" if load else ""
    return [
        f"note         the rounds of one setting differ by up to {worst:.1f}x: the machine is busy{busy} and "
        "the recommendation",
        "             is uncertain; measure again on an idle machine, or with more --seconds",
    ]


def _spread(rates: Sequence[float]) -> str:
    """``lowest..highest`` samples/s of the rounds (``-`` with one round)."""
    return f"{min(rates):,.0f}..{max(rates):,.0f}" if len(rates) > 1 else "-"


def table_lines(runs: Sequence[Mapping[str, Any]], has_video: bool) -> list[str]:
    """The results as an aligned text table, one row per run, in the order measured."""
    head = ["order", "workers", "samples/s", "spread", "of best", "per CPU-s", "first batch", "out/sample"]
    if has_video:
        head += ["decoded/sample", "frames/cam"]
    head.append("same-episode pairs")
    rows = [head]
    for r in runs:
        row = [
            order_label(r["block_size"]),
            str(r["workers"]),
            f"{r['samples_per_s']:,.0f}",
            _spread(r.get("samples_per_s_rounds") or []),
            f"{r['fraction_of_best']:.0%}",
            "n/a" if r.get("samples_per_cpu_s") is None else f"{r['samples_per_cpu_s']:,.0f}",
            f"{r['first_batch_s']:.2f} s",
            human_bytes(r["delivered_bytes_per_sample"]),
        ]
        if has_video:
            d = r["decode"] or {}
            frames = d.get("frames_decoded_per_sample_camera")
            row += [
                human_bytes(d.get("packet_bytes_per_sample")),
                "n/a" if frames is None else f"{frames:.2f}",
            ]
        share = r.get("same_episode_share")
        row.append("-" if share is None else f"{share:.1%}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    out = []
    for k, row in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def document(
    dataset: Mapping[str, Any],
    settings: Mapping[str, Any],
    machine: Mapping[str, Any],
    runs: Sequence[dict[str, Any]],
    uniform_share: float,
    fresh: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The JSON document (see the module doc), with ``fraction_of_best`` and the recommendation."""
    best = max((float(r["samples_per_s"]) for r in runs), default=0.0)
    for r in runs:
        r["fraction_of_best"] = float(r["samples_per_s"]) / best if best > 0 else 0.0
    rec = recommend(runs)
    rec["text"] = " ".join(
        line.strip().split(None, 1)[1] if line.startswith(("recommended", "shuffle")) else line.strip()
        for line in recommendation_lines(rec, uniform_share, int(settings["batch_size"]))
    )
    return {
        "schema": SCHEMA,
        "dataset": dict(dataset),
        "settings": dict(settings),
        "machine": dict(machine),
        "uniform_same_episode_share": uniform_share,
        "runs": list(runs),
        "recommendation": rec,
        "first_batch_fresh_process": None if fresh is None else dict(fresh),
    }
