"""torch.distributed for one run over many processes (torchrun): rank, sharding, reductions.

Launched by torchrun, every process sees RANK, WORLD_SIZE and LOCAL_RANK; without them the
run is a single process and every helper here is a no-op.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

TIMEOUT_ENV = "ENS_DIST_TIMEOUT_MINUTES"  # rank 0 predicts alone while the others wait


def launched() -> bool:
    """True inside a torchrun launch of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_world_size() -> int:
    """Processes torchrun started on this node (1 alone)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def cuda_for_every_local_rank() -> bool:
    """True when this node has a GPU for each of its torchrun processes."""
    return torch.cuda.is_available() and torch.cuda.device_count() >= local_world_size()


def init_from_env() -> None:
    """Join the process group of a torchrun launch; once.

    CUDA tensors go over nccl and CPU tensors over gloo when every local rank has a GPU
    (runs may use either device); otherwise gloo carries everything.
    """
    if not launched() or dist.is_initialized():
        return
    backend = "gloo"
    if cuda_for_every_local_rank():
        backend = "cpu:gloo,cuda:nccl"
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    minutes = float(os.environ.get(TIMEOUT_ENV, "120"))
    dist.init_process_group(backend, timeout=timedelta(minutes=minutes))


def active() -> bool:
    """True when this process is one of several in an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 alone)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Number of processes (1 alone)."""
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    """Rank on this node (the CUDA device index)."""
    return int(os.environ.get("LOCAL_RANK", "0")) if active() else 0


def is_main() -> bool:
    """Rank 0: the only process that writes files and prints."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op alone)."""
    if active():
        dist.barrier()


def sum_values(values: list[float], device: torch.device) -> list[float]:
    """Sums of `values` over the ranks (float64 all_reduce; unchanged alone)."""
    if not active():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast(value: Any) -> Any:
    """Rank 0's `value` on every rank (picklable values; unchanged alone)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order ([value] alone)."""
    if not active():
        return [value]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def shard(rows: Any, part: int | None = None, parts: int | None = None) -> Any:
    """Rank `part` of `parts` (default: this process's) share of an ordered index array.

    As DistributedSampler splits: the array is padded (wrapping around) to a multiple of
    `parts` and part r takes positions r, r + W, r + 2W, ..., so every part has the same length.
    """
    part = rank() if part is None else part
    parts = world_size() if parts is None else parts
    if parts == 1 or len(rows) == 0:
        return rows
    padded = -(-len(rows) // parts) * parts
    index = torch.arange(padded) % len(rows)
    return rows[index[part::parts].numpy()]


def sync_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every rank."""
    if active():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def parameter_digest(module: torch.nn.Module) -> str:
    """sha256 of every parameter's bytes (identical replicas have identical digests)."""
    digest = hashlib.sha256()
    for name, parameter in sorted(module.named_parameters()):
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_replicas(module: torch.nn.Module) -> list[str]:
    """Every rank's parameter digest; raises if the DDP replicas drifted apart ([] alone)."""
    if not active():
        return []
    digests = gather(parameter_digest(module))
    if len(set(digests)) > 1:
        raise RuntimeError(f"DDP replicas differ after training: digests {digests}")
    return digests
