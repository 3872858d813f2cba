"""A wide MLP over 3x32x32 inputs (3072 -> 2048 x3 -> 10): a model that batching pays for.

Each request of one image reads all 14M weights (56 MB) from memory; a batch of 16 reads them
once, so on a CPU the batch costs a few times one image, not sixteen. The small CNN is the
opposite: its convolutions cost the same per image at any batch size.
"""

from __future__ import annotations

from torch import nn


def make_model() -> nn.Module:
    import torch

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(3072, 2048),
        nn.ReLU(),
        nn.Linear(2048, 2048),
        nn.ReLU(),
        nn.Linear(2048, 2048),
        nn.ReLU(),
        nn.Linear(2048, 10),
    ).eval()
