"""--track: the metrics of metrics.jsonl reach Weights & Biases' run files (offline mode)."""

import json
import math
import struct
import time

import pytest

from mdpo.logger import read_metrics
from mdpo.resume import resume
from mdpo.train import train

pytest.importorskip("wandb")


def wandb_history(path):
    """The history rows of an offline W&B run file: records in LevelDB's log format (32 KiB blocks
    of chunks with a 7-byte header: crc, length, type), after W&B's 7-byte file header."""
    from wandb.proto import wandb_internal_pb2

    data, block, pos = path.read_bytes(), 32768, 7
    records, chunks = [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + length > len(data):  # a record still being written
            break
        chunks += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            records.append(wandb_internal_pb2.Record.FromString(chunks))
            chunks = b""
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]


def test_track_mirrors_every_metric_to_an_offline_wandb_run(tiny, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = train(tiny("mdpo", total_steps=64, track=True, **{"env.game": "coins"}), progress=False)
    resume(run_dir, {"total_steps": 96}, progress=False)  # continues the same W&B run
    (run_id,) = {(run_dir / "wandb" / "mdpo-run-id").read_text()}
    logged = read_metrics(run_dir)
    # W&B's service process closes a run's file a moment after run.finish() returns (at the latest
    # when the Python process exits), so a busy machine may see the resumed run's file still filling
    deadline = time.time() + 60
    while True:
        files = sorted(run_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))
        tracked = [row for path in files for row in wandb_history(path)]
        if len(tracked) >= len(logged) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert len(files) == 2  # one per process; `wandb sync` joins them
    assert [row["global_step"] for row in tracked] == [row["global_step"] for row in logged] == [32, 64, 64, 96, 96]
    for ours, theirs in zip(logged, tracked):
        for key, value in ours.items():
            assert theirs[key] == value or (value is None and math.isnan(theirs[key])), key
    names = tracked[-1].keys() | tracked[-2].keys()
    assert {"losses/value_loss", "distill/kl", "eval/test_return", "charts/SPS"} <= names
