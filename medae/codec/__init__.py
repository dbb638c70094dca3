"""The compressed study: one ``.mae`` file holding a scan losslessly, within a bound, or as a latent.

Importing this package does not import torch; only the latent mode does, when used.
"""

from __future__ import annotations

from medae.codec.study import MODES, compress, decompress, describe, is_compressed_study, read_study, write_study

__all__ = [
    "MODES",
    "compress",
    "decompress",
    "describe",
    "is_compressed_study",
    "read_study",
    "write_study",
]
