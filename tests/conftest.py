import os

# GUI tests render offscreen; set before Qt is first imported.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
