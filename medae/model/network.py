"""3D convolutional autoencoders: plain, denoising (optionally with skip connections) and variational.

``encode(x)`` and ``decode(z)`` are separate calls so that a latent can be stored and decoded later; with
skip connections the latent also carries the encoder's feature maps (such a model serves anomaly
detection only, its card says so). Blocks come from MONAI.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.networks.blocks import Convolution
from torch import nn


@dataclass
class Latent:
    """What ``encode`` returns.

    Attributes:
        z: The bottleneck (N, latent_channels, *grid); for a VAE, a sample (or the mean in eval mode).
        mu: VAE mean (None otherwise).
        logvar: VAE log-variance (None otherwise).
        skips: Encoder features for skip connections, shallow first (empty without skips).
    """

    z: torch.Tensor
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    skips: tuple[torch.Tensor, ...] = ()


class AutoEncoder3D(nn.Module):
    """Encoder of strided 3D convolutions -> small latent grid -> mirrored decoder.

    Args:
        in_channels: Image channels.
        channels: Feature channels per level; each level halves the grid.
        latent_channels: Channels of the bottleneck grid.
        skip: Concatenate encoder features into the decoder (U-Net style, for denoising models).
        variational: Parameterise the bottleneck as a Gaussian (VAE).
        norm: MONAI norm name.
        act: MONAI activation name.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32, 64, 96),
        latent_channels: int = 16,
        skip: bool = False,
        variational: bool = False,
        norm: str = "INSTANCE",
        act: str = "LEAKYRELU",
    ) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.skip = skip
        self.variational = variational
        self.latent_channels = latent_channels
        conv = dict(spatial_dims=3, kernel_size=3, norm=norm, act=act)
        self.down = nn.ModuleList()
        prev = in_channels
        for c in self.channels:
            self.down.append(
                nn.Sequential(
                    Convolution(in_channels=prev, out_channels=c, strides=2, **conv),
                    Convolution(in_channels=c, out_channels=c, strides=1, **conv),
                )
            )
            prev = c
        out_latent = latent_channels * (2 if variational else 1)
        self.to_latent = Convolution(3, prev, out_latent, kernel_size=1, conv_only=True)
        self.from_latent = Convolution(3, latent_channels, prev, kernel_size=1, norm=norm, act=act)
        self.up = nn.ModuleList()
        rev = list(reversed(self.channels))
        for level, c in enumerate(rev):
            nxt = rev[level + 1] if level + 1 < len(rev) else rev[-1]
            cin = c * (2 if skip and level > 0 else 1)
            self.up.append(
                nn.Sequential(
                    Convolution(in_channels=cin, out_channels=c, strides=1, **conv),
                    Convolution(in_channels=c, out_channels=nxt, strides=2, is_transposed=True, **conv),
                )
            )
        self.head = Convolution(3, rev[-1], in_channels, kernel_size=1, conv_only=True)

    @property
    def factor(self) -> int:
        """Input sizes must be multiples of this."""
        return 2 ** len(self.channels)

    def encode(self, x: torch.Tensor) -> Latent:
        """Image (N, C, D, H, W) -> latent."""
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
        out = self.to_latent(h)
        if not self.variational:
            return Latent(z=out, skips=tuple(skips[:-1]) if self.skip else ())
        mu, logvar = out.chunk(2, dim=1)
        logvar = logvar.clamp(-12, 8)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return Latent(z=z, mu=mu, logvar=logvar, skips=tuple(skips[:-1]) if self.skip else ())

    def decode(self, latent: Latent | torch.Tensor) -> torch.Tensor:
        """Latent -> image. A bare tensor is a bottleneck without skips (e.g. a VAE sample)."""
        if isinstance(latent, torch.Tensor):
            if self.skip:
                raise ValueError("a model with skip connections cannot decode a bare bottleneck")
            latent = Latent(z=latent)
        h = self.from_latent(latent.z)
        skips = list(latent.skips)
        for level, block in enumerate(self.up):
            if self.skip and level > 0:
                h = torch.cat([h, skips.pop()], dim=1)
            h = block(h)
        return self.head(h)

    def forward(self, x: torch.Tensor, return_latent: bool = False):
        """Reconstruction of ``x`` (and the latent, for losses that need it, e.g. the VAE's KL term)."""
        latent = self.encode(x)
        out = self.decode(latent)
        return (out, latent) if return_latent else out


def build_network(arch: dict) -> AutoEncoder3D:
    """Builds the network a model card's ``architecture`` section describes."""
    return AutoEncoder3D(
        in_channels=int(arch.get("in_channels", 1)),
        channels=tuple(int(c) for c in arch["channels"]),
        latent_channels=int(arch["latent_channels"]),
        skip=bool(arch.get("skip", False)),
        variational=arch.get("variant") == "vae",
        norm=str(arch.get("norm", "INSTANCE")),
        act=str(arch.get("act", "LEAKYRELU")),
    )
