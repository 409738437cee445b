"""`mer-data ingest --ray-address` against a two-node Ray cluster on this machine: the serial bytes, on both nodes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.ingest import IngestConfig, run_ingest

SHARD_FILES = ("*.tar", "*.parquet", "*_stats.json")
DRIVER = "import sys; from cli import data_app; sys.argv[0] = 'mer-data'; data_app()"


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for pattern in SHARD_FILES for p in sorted(out.glob(pattern))}


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def test_ingest_on_a_two_node_cluster_gives_the_serial_bytes(cluster, synth_root, tmp_path, face_model):
    root = synth_root("casme3", video=True)  # every video spans several shards: clips are split across nodes
    args = ["ingest", "casme3", "--root", str(root), "--out", str(tmp_path / "cluster"), "--shard-size", "25",
            "--workers", "2", "--ray-address", cluster.address, "--face-model", str(face_model)]
    proc = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    totals = json.loads((tmp_path / "cluster" / "ingest.json").read_text())["totals"]
    assert totals["ray_nodes"] == 2 and totals["shards_run"] == totals["shards"] >= 4
    serial = run_ingest(IngestConfig(dataset="casme3", root=str(root), out=str(tmp_path / "serial"), shard_size=25,
                                     workers=0, face_model=str(face_model)))
    assert serial["written"] == totals["written"] > 0
    assert _shard_bytes(tmp_path / "cluster") == _shard_bytes(tmp_path / "serial")
