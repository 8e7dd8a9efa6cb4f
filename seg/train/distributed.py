"""torchrun at no cost on one device: read RANK / LOCAL_RANK / WORLD_SIZE, one gate for printing and saving."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed(device_arg: str | None = None) -> tuple[torch.device, int, int]:
    """Start the process group when launched by torchrun; otherwise a single process.

    Returns (device, rank, world_size). NCCL on CUDA, gloo on CPU.
    """
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        use_cuda = torch.cuda.is_available() and device_arg != "cpu"
        if use_cuda:
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        return device, rank, world
    if device_arg and device_arg != "auto":
        return torch.device(device_arg), 0, 1
    return torch.device("cuda" if torch.cuda.is_available() else "cpu"), 0, 1


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


def world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main_process() -> bool:
    return rank() == 0


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (returns it unchanged on one process)."""
    if is_dist():
        dist.all_reduce(t)
    return t


def cleanup() -> None:
    if is_dist():
        dist.destroy_process_group()
