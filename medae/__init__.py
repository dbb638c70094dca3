"""medae: anomaly detection in MRI and CT volumes with 3D autoencoders.

Importing this package is cheap: it loads neither numpy, torch nor Qt, so that ``medae --help`` and the
window appear fast, and a Ctrl+C in the first moments of a command is handled by the command line rather
than ending an import with a traceback. Heavy modules are imported where they are first needed.
"""

from typing import TYPE_CHECKING

from medae._version import __version__
from medae.errors import MedaeError

if TYPE_CHECKING:
    from medae.volume import Volume

__all__ = ["MedaeError", "Volume", "__version__"]


def __getattr__(name: str):
    if name == "Volume":
        from medae.volume import Volume

        return Volume
    raise AttributeError(f"module 'medae' has no attribute {name!r}")
