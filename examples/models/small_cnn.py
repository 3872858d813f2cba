"""A small CNN for CIFAR-sized images (3x32x32 -> 10 logits): the runtime's example model.

Build it with:
  sloscale runtime build --model examples/models/small_cnn.py:make_model \
      --input-shape 1,3,32,32 --format python --name small_cnn --out /tmp/models
"""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 8 * 8, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(images), 1))


def make_model() -> nn.Module:
    """Fixed seed so that every build of the example has the same weights."""
    torch.manual_seed(0)
    return SmallCNN().eval()
