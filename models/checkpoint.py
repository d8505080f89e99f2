"""Checkpoints: tensors and plain containers only, written atomically, read with weights_only."""

from __future__ import annotations

import errno
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ensemble.errors import InputError, full_disk_error
from ensemble.io.atomic import atomic_open


def rng_state() -> dict:
    """Python, numpy and torch (CPU and CUDA) random states as weights_only-safe values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "python": [version, list(internal), gauss],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict) -> None:
    """Inverse of rng_state()."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, checkpoint: dict) -> None:
    """torch.save to a temporary file beside `path`, then os.replace.

    A full disk is an InputError naming `path`: torch reports a write cut short as a
    RuntimeError ('unexpected pos ...'), which means a full disk when less space is free than
    the checkpoint's tensors need.
    """
    with atomic_open(path, "wb") as handle:
        try:
            torch.save(checkpoint, handle)
        except RuntimeError:
            needed = _tensor_bytes(checkpoint)
            if shutil.disk_usage(Path(path).parent).free >= needed:
                raise
            full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise full_disk_error(path, full, needed) from None


def _tensor_bytes(value: object) -> int:
    """Bytes of the tensors in a checkpoint (nested dicts, lists and tuples)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(item) for item in value)
    return 0


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """torch.load(weights_only=True) with a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch raises several types for foreign files
        raise InputError(path, f"not a readable checkpoint: {error}") from None


def evaluated_weights(checkpoint: dict) -> dict:
    """The weights a checkpoint validated with: its EMA's (`ema_decay`), else the model's."""
    ema = checkpoint.get("ema")
    if not ema:
        return checkpoint["model"]
    return {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}
