"""The prepared GPU check's CPU smoke path: every step runs at the tiny size and reports what the GPU run will."""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_gpu  # noqa: E402


def test_cpu_smoke_runs_every_step_of_the_gpu_check(tmp_path):
    threads = torch.get_num_threads()
    try:
        out = bench_gpu.main(["--smoke", "--work", str(tmp_path / "work"), "--json", str(tmp_path / "gpu.json")])
    finally:
        torch.set_num_threads(threads)
    assert json.loads((tmp_path / "gpu.json").read_text()) == json.loads(json.dumps(out))
    assert out["device"] == "cpu" and out["plan"]["preset"] == "tiny"
    assert out["data"]["pairs"] > 0 and out["data"]["shards"] >= 1
    step = out["step"]
    assert step["samples_s"] > 0 and step["gflops_step"] > 0 and step["mfu"] is None  # no peak known for a CPU
    assert [r["workers"] for r in out["loader"]] == [1, 2]
    assert all(0.0 <= r["data_wait_frac"] <= 1.0 and r["samples_s"] > 0 for r in out["loader"])
    resume = out["resume"]
    assert resume["backend"] == "gloo" and resume["ranks"] == 2 and resume["steps"] == [1, 2, 3, 4]
    assert resume["exact"] and resume["max_loss_diff"] == 0.0  # bit for bit on CPU
