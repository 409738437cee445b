"""Checks every registered model's tests share."""

import torch


def loss_drops(model: torch.nn.Module, batch: dict, opt: torch.optim.Optimizer, steps: int = 5) -> tuple[float, float]:
    """(loss before, loss after) `steps` optimizer steps on one batch: a model that can learn at all fits it."""
    first = model.loss(batch)[0].item()
    for _ in range(steps):
        opt.zero_grad()
        model.loss(batch)[0].backward()
        opt.step()
    return first, model.loss(batch)[0].item()
