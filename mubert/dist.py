"""Distributed setup read from the environment: one code path for one CPU process, one GPU, and torchrun (DDP).

`torchrun` sets RANK, WORLD_SIZE and LOCAL_RANK; without them this is a single process (rank 0 of 1) and no process group
is created. GPUs use NCCL, CPU processes use gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int  # global rank, 0 .. world_size-1
    world_size: int  # number of processes in the job
    local_rank: int  # rank on this node: the GPU index
    device: torch.device  # cuda:<local_rank>, or cpu

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs and saves."""
        return self.rank == 0


def setup(device: str = "auto") -> DistInfo:
    """Read the torchrun environment, pick the device and, for more than one process, join the process group."""
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device("cuda", local_rank) if device == "cuda" else torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=dev if dev.type == "cuda" else None)
    return DistInfo(rank, world_size, local_rank, dev)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes (in place); the identity for a single process."""
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def cleanup() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()
