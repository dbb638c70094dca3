"""torch and MONAI imported with Ctrl-C and SIGTERM held until they are in.

A signal that lands while torch's C++ start-up code runs raises the interrupt inside it, and the C++
runtime then aborts the whole process ("terminate called after throwing ... KeyboardInterrupt", a core
dump) instead of the command's one line. Held, the signal is acted on as soon as the import is done, where
Python stops as usual.
"""

from __future__ import annotations

import signal
import sys
import threading

_HELD = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


def import_network_libraries() -> None:
    """Imports torch and the MONAI blocks the networks use, unless they are imported already."""
    if "torch" in sys.modules and "monai.networks.blocks" in sys.modules:
        return
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        _import()
        return
    # Python runs signal handlers between bytecodes of the main thread, whichever thread the system
    # delivered the signal to: a handler that only notes it raises nothing inside the C++ code.
    noted: list[int] = []
    before = {sig: signal.signal(sig, lambda signum, _frame: noted.append(signum)) for sig in _HELD}
    try:
        _import()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if noted:
        signal.raise_signal(noted[0])  # now, to the handler the command had: its usual stop


def _import() -> None:
    import monai.networks.blocks  # noqa: F401 - imported here to be imported whole
    import torch  # noqa: F401
