"""The paper's ResNet9, with BatchNorm, as a built-in architecture.

After the authors' code: three stages of ``width``, 2 x ``width`` and 4 x ``width`` channels
(16/32/64 in the paper), each a 3x3 convolution, BatchNorm, ReLU and a 2x2 max-pool, followed by
``depth`` residual blocks (two convolution-BatchNorm pairs around a skip connection; 1 in the
paper); then a final BatchNorm, global average pooling and a linear head. Inputs are only
scaled to [0, 1]. How its BatchNorm layers enter the landscape is the run's
``model.batchnorm`` (``core.nets.norm``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, h: Tensor) -> Tensor:
        r = F.relu(self.bn1(self.conv1(h)))
        return F.relu(h + self.bn2(self.conv2(r)))


class Stage(nn.Module):
    def __init__(self, c_in: int, c: int, depth: int):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.blocks = nn.Sequential(*(Residual(c) for _ in range(depth)))

    def forward(self, h: Tensor) -> Tensor:
        h = F.max_pool2d(F.relu(self.bn(self.conv(h))), 2)
        return self.blocks(h)


class ResNet9(nn.Module):
    def __init__(self, width: int, depth: int, input_shape: tuple, n_classes: int):
        super().__init__()
        if len(input_shape) != 3 or min(input_shape[1:]) < 8:
            raise ValueError(
                f"resnet9 needs images (C, H, W) of at least 8x8, got input_shape {input_shape}"
            )
        c = (width, 2 * width, 4 * width)
        self.stages = nn.Sequential(
            Stage(input_shape[0], c[0], depth), Stage(c[0], c[1], depth), Stage(c[1], c[2], depth)
        )
        self.norm = nn.BatchNorm2d(c[2])
        self.head = nn.Linear(c[2], n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.stages(x))  # (B, 4W, H/8, W/8)
        return self.head(h.mean((2, 3)))
