"""Benchmark training speed: images/s per architecture of a train-all config.

For every [[run]] it builds the model as train-all does and times `--steps` training steps
(batched augmentation, forward, loss, backward, clipping, optimizer step, EMA update) on random
uint8 crops of the run's crop size, after `--warmup` steps. On CUDA it also times the run
without bf16 autocast and channels_last.

    .venv/bin/python benchmarks/bench_train.py                          # configs/demo.toml
    .venv/bin/python benchmarks/bench_train.py --config configs/demo.toml --steps 20
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from models.augment import BatchPipeline
from models.config import RunConfig
from models.ema import ema_of
from models.factories import LOSSES, build_optimizer
from models.heads import split_outputs
from models.losses import ScaleNLL
from models.predict import autocast
from models.train import build_for_run, select_device
from models.train_all import load_runs

N_POINTS = 971


def images_per_second(config: RunConfig, device: torch.device, steps: int, warmup: int) -> float:
    """Training images/s of one run configuration on random data."""
    built = build_for_run(config, N_POINTS)
    model = built.model.to(device).train()
    memory = torch.contiguous_format
    if device.type == "cuda" and config.channels_last:
        model = model.to(memory_format=torch.channels_last)
        memory = torch.channels_last
    perm = torch.arange(N_POINTS)
    pipeline = BatchPipeline(built.mean, built.std, built.in_channels, config.augment, perm)
    optimizer = build_optimizer(model, config.stages[0])
    ema = ema_of(model, config.ema_decay) if config.ema_decay else None
    loss_fn = LOSSES[config.loss](config)
    scale_loss = ScaleNLL(config.uncertainty)
    size, batch = config.crop_size, config.batch_size
    pixels = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8).to(device)
    targets = (torch.rand(batch, N_POINTS, 2) * 0.6 - 0.3).to(device)
    forward = torch.compile(model) if config.compile else model
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        x, y = pipeline.train_batch(pixels, targets)
        with autocast(device, config.bf16):
            output = forward(x.contiguous(memory_format=memory))
        predicted, log_sigma = split_outputs(output.float(), N_POINTS)
        loss = loss_fn(predicted, y)
        if log_sigma is not None:  # an uncertainty head: the scale's NLL, as the loop adds it
            loss = loss + scale_loss(predicted, y, log_sigma)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:  # the loop clips the points' and the sigma branch's apart
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    """Print a Markdown table of training images/s per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "configs" / "demo.toml"
    parser.add_argument("--config", type=Path, default=default)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, help="Override every run's batch_size.")
    args = parser.parse_args()
    device = select_device(args.device)
    print(
        f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, "
        f"threads {torch.get_num_threads()}"
    )
    print(
        "| run | arch | crop | batch | images/s |"
        + (" fp32, no channels_last |" if device.type == "cuda" else "")
    )
    print("|---|---|---|---|---|" + ("---|" if device.type == "cuda" else ""))
    for config in load_runs(args.config):
        if args.batch_size:
            config = dataclasses.replace(config, batch_size=args.batch_size)
        speed = images_per_second(config, device, args.steps, args.warmup)
        row = f"| {config.name} | {config.arch} | {config.crop_size} | {config.batch_size} |"
        row += f" {speed:.0f} |"
        if device.type == "cuda":
            plain = dataclasses.replace(config, bf16=False, channels_last=False)
            row += f" {images_per_second(plain, device, args.steps, args.warmup):.0f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
