import os

# GUI tests render offscreen; set before Qt is first imported.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402  - after the environment, as Qt must see it first


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A small real model folder (untrained, seeded) for tests of the analysis paths."""
    from tests.gui.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny")
