"""Calibration of a trained classifier's probabilities (temperature scaling)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["fit_temperature"]


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, max_iter: int = 100) -> float:
    """Temperature T minimizing the negative log-likelihood of ``softmax(logits / T)``.

    Parameters
    ----------
    logits : Tensor
        (N, C) validation logits.
    labels : Tensor
        (N,) true classes.
    max_iter : int
        L-BFGS iterations.

    Returns
    -------
    float
        The temperature, kept within [0.05, 20].

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> z = torch.randn(20000, 3) * 4
    >>> y = torch.distributions.Categorical(logits=z / 4).sample()
    >>> round(fit_temperature(z, y))  # logits 4x too confident
    4
    """
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter)
    logits, labels = logits.detach().float(), labels.detach().long()

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(float(log_t.detach().exp()), 0.05, 20.0))
