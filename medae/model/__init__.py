"""Networks, model cards, safe loading/saving, and preprocessing to model space and back.

Importing this package does not import torch; ``load_model`` does.
"""

from __future__ import annotations

from medae.model.card import ModelCard
from medae.model.store import default_model_dir


def load_model(path=None, device: str = "auto"):
    """Loads a model folder (default: the shipped model); see ``medae.model.loaded.load_model``."""
    from medae.model.loaded import load_model as _load

    return _load(path, device)


__all__ = ["ModelCard", "default_model_dir", "load_model"]
