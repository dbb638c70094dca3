"""medae: anomaly detection in MRI and CT volumes with 3D autoencoders.

Importing this package is cheap: it loads neither torch nor Qt, so that ``medae --help`` and the
window appear fast. Heavy modules are imported where they are first needed.
"""

from medae._version import __version__
from medae.errors import MedaeError
from medae.volume import Volume

__all__ = ["MedaeError", "Volume", "__version__"]
