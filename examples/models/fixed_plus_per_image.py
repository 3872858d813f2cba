"""A model whose batch costs a fixed part plus a part per image: the simulator's fidelity model.

The simulator's ServiceModel says a batch of n takes base_ms + per_item_ms * n, as on a GPU
serving a large model (weights read and kernels launched once per batch, compute per item).
Real models on this project's CPUs batch in steps instead: oneDNN and MKL choose kernels by
batch size, so wide_mlp's batch of 3 costs more than its batch of 4 and the CNNs jump once the
batch's activations leave the L2 cache. This model is built to follow the line on a CPU, so that
`make bench-fidelity` tests the simulator's queueing and batching rather than a kernel library:

- per image: 32 steps of tanh(X @ W) on a 64 x 256 matrix made from the image (about 4 ms on
  one core); torch runs them as one GEMM with 64 rows per image, so the cost grows with the batch
  in proportion and the batch's working set (1 MB at 16 images) stays in cache;
- per batch: 24 such steps on a learned 256 x 256 "prompt" that does not depend on the batch
  (a context computed once per call; about 13 ms).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ROWS = 64  # rows of the matrix each image becomes
WIDTH = 256  # 3 x 32 x 32 = 12 x 256
IMAGE_STEPS = 32
CONTEXT_STEPS = 24


class FixedPlusPerImage(nn.Module):
    def __init__(self, image_steps: int = IMAGE_STEPS, context_steps: int = CONTEXT_STEPS) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)

        def weights(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) / math.sqrt(shape[-1]))

        self.up = weights(ROWS, 12)
        self.image_weights = weights(image_steps, WIDTH, WIDTH)
        self.prompt = nn.Parameter(torch.randn(WIDTH, WIDTH, generator=generator))
        self.context_weights = weights(context_steps, WIDTH, WIDTH)
        self.head = nn.Linear(WIDTH, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.up @ images.reshape(images.shape[0], 12, WIDTH)  # batch x ROWS x WIDTH
        for weight in self.image_weights:
            x = torch.tanh(x @ weight)
        context = self.prompt
        for weight in self.context_weights:
            context = torch.tanh(context @ weight)
        return self.head(x.mean(1) * torch.sigmoid(context.mean(0)))


def make_model() -> nn.Module:
    """Fixed seed so that every build of the example has the same weights."""
    torch.manual_seed(0)
    return FixedPlusPerImage().eval()
