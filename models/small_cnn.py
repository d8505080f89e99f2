"""A small CNN family for low-resolution (e.g. 96 x 96 grayscale) landmark regression.

After the Kaggle Facial Keypoints seed: `basic` (plain conv blocks), `wider` (more channels),
`deeper` (more blocks) and `residual` (deeper with skip connections). Each ends in global
average pooling and an nn.Linear classifier that the registry replaces by a regression head.
"""

from __future__ import annotations

from torch import nn

# name -> (channels per stage, blocks per stage, residual)
VARIANTS: dict[str, tuple[tuple[int, ...], int, bool]] = {
    "basic": ((32, 64, 128, 256), 1, False),
    "wider": ((64, 128, 256, 512), 1, False),
    "deeper": ((32, 64, 128, 256), 2, False),
    "residual": ((32, 64, 128, 256), 2, True),
}


class ConvBlock(nn.Module):
    """3x3 conv, batch norm, ReLU; with `residual`, two convs and a (projected) skip connection."""

    def __init__(self, cin: int, cout: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        if residual:
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            same = stride == 1 and cin == cout
            self.skip = (
                nn.Identity()
                if same
                else nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        if not self.residual:
            return out
        return self.relu(self.bn2(self.conv2(out)) + self.skip(x))


class SmallCNN(nn.Module):
    """Stages of conv blocks (the first of each halves the resolution), pooling, a classifier."""

    def __init__(
        self, variant: str = "basic", num_classes: int = 1000, in_channels: int = 1
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown small_cnn variant '{variant}'; allowed: {sorted(VARIANTS)}")
        widths, blocks, residual = VARIANTS[variant]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 2, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        cin = widths[0]
        for width in widths:
            layers = [ConvBlock(cin, width, 2 if width != widths[0] else 1, residual)]
            layers += [ConvBlock(width, width, 1, residual) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            cin = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))
