"""Small building blocks of a Swin block: stochastic depth and the MLP.

Instrumented like the rest of the model: each call is a scope of the walkthrough.
"""

from __future__ import annotations

import torch
from torch import nn

from ..recording.tracing import Instrumented, step, traced_function


@traced_function
def drop_path_f(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch of some samples.

    x: (B, ...). Each sample keeps its branch with probability 1 - drop_prob,
    scaled by 1 / (1 - drop_prob) so that the expectation is unchanged.
    """
    step("input", x=x)
    if drop_prob == 0.0 or not training:
        step("output", output=x, note="drop_path_zero" if drop_prob == 0.0 else "drop_path_eval", drop_prob=drop_prob)
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # B, 1, 1: one draw per sample
    random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    random_tensor.floor_()  # 1 keeps the sample's branch, 0 drops it
    output = x.div(keep_prob) * random_tensor
    step("output", output=output, random_tensor=random_tensor, keep_prob=keep_prob)
    return output


class DropPath(Instrumented):
    """Stochastic depth per sample, applied to a residual branch."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, C) -> (B, L, C)."""
        step("input", x=x)
        ans = drop_path_f(x, self.drop_prob, self.training)
        step("output", ans=ans)
        return ans

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


class Mlp(Instrumented):
    """The block's feed-forward network: Linear, GELU, Linear, with dropouts."""

    def __init__(self, dim: int, hidden_dim: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, C) -> (B, L, C) through a hidden width of mlp_ratio * C."""
        step("input", x=x)
        x = self.fc1(x)  # B, L, hidden
        step("fc1", self.fc1, x=x)
        x = self.act(x)
        step("act", self.act, x=x)
        x = self.drop1(x)
        step("dropout", self.drop1, name="drop1", x=x)
        x = self.fc2(x)  # B, L, C
        step("fc2", self.fc2, x=x)
        x = self.drop2(x)
        step("dropout", self.drop2, name="drop2", x=x)
        step("output", x=x)
        return x
