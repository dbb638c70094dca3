"""The viewer's state and pixels, without Qt.

``ViewerSession`` holds what is on screen and emits psygnal signals when it changes; ``render``
gives the pixels of any plane. The Qt package ``medae.gui`` only draws these and forwards input, so
everything the window does can also be done (and tested) headless.
"""

from medae.viewer.session import LAYERS, LAYOUTS, Readout, ViewerSession, ViewState
from medae.viewer.windowing import Window

__all__ = ["LAYERS", "LAYOUTS", "Readout", "ViewState", "ViewerSession", "Window"]
