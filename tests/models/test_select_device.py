"""Device selection: CUDA devices always carry an index; torchrun needs a GPU per process."""

from __future__ import annotations

import pytest
import torch

from models import distributed
from models.train import select_device


@pytest.fixture
def one_gpu(monkeypatch) -> list:
    """Pretend this machine has one CUDA device; record set_device calls."""
    chosen: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    return chosen


def test_auto_picks_an_indexed_cuda_device(one_gpu) -> None:
    device = select_device("auto")
    assert device == torch.device("cuda", 0)
    assert one_gpu == [device]


def test_cpu_stays_cpu_with_a_gpu_present(one_gpu) -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert one_gpu == []


def test_torchrun_with_more_processes_than_gpus_is_a_clear_error(one_gpu, monkeypatch) -> None:
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "local_rank", lambda: 1)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="2 processes on this node but it has 1 GPU"):
        select_device("auto")


def test_no_cuda_named_without_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        select_device("cuda")
