"""The desktop viewer: the only package that imports Qt (PySide6).

Widgets draw what ``medae.viewer.ViewerSession`` holds and forward input to it; long operations
run in worker threads (``workers``). Start it with ``medae-gui`` or ``medae view``.
"""
