"""The exponential moving average of the weights, against a hand computation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.ema import ema_decay_at, ema_of


def test_ema_equals_the_hand_computed_average_after_a_few_steps() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    decay = 0.6
    ema = ema_of(model, decay)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    snapshots = []
    for _ in range(5):
        optimizer.zero_grad()
        model(torch.randn(8, 3)).pow(2).sum().backward()
        optimizer.step()
        ema.update_parameters(model)
        snapshots.append({k: v.detach().clone().numpy() for k, v in model.state_dict().items()})
    # by hand: the first update copies, update t then blends with d_t = min(decay, (1+t)/(10+t))
    expected = {k: v.astype(np.float64) for k, v in snapshots[0].items()}
    for t, weights in enumerate(snapshots[1:], start=1):
        d = min(decay, (1 + t) / (10 + t))
        for name, value in weights.items():
            if np.issubdtype(value.dtype, np.floating):
                expected[name] = d * expected[name] + (1 - d) * value
            else:  # batch norm's step count is copied
                expected[name] = value
    averaged = ema.module.state_dict()
    assert averaged.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(averaged[name].numpy(), value, rtol=1e-6, err_msg=name)
    assert int(ema.n_averaged) == 5
    assert ema_decay_at(decay, 1) == 2 / 11 and ema_decay_at(decay, 100) == decay
