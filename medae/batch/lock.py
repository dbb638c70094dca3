"""One run at a time per output folder: a lock file naming the process that writes there.

Two runs into one folder would each redo every series and leave ``results.csv`` describing results the
other run replaced. The lock is a file created exclusively; a lock left by a run that was killed (its
process is gone on this machine) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from medae.atomic import flock
from medae.errors import OutputError

LOCK_NAME = ".medae-batch.lock"


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Holds the output folder's lock for the duration of a run.

    The lock file names its process, and the process holds an advisory lock (flock) on it while it runs:
    the system drops that lock when the process ends however it ends, in any container, so a lock file
    whose flock can be taken was left by a run that is gone.

    Raises:
        OutputError: another run is writing to the folder (or its lock cannot be made).
    """
    path = Path(out) / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid())}
    for _attempt in range(30):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is None and _age_s(path) < 2.0:
                # Made a moment ago and not yet locked and named by the run making it: not a leftover.
                time.sleep(0.1)
                continue
            if _held(path, holder):
                holder = holder or {}
                raise OutputError(
                    f"{out}: another medae run (process {holder.get('pid')} on {holder.get('host')}) is writing to "
                    f"this folder. Wait for it to finish or choose another output folder; if no run is going on, "
                    f"delete {path}."
                ) from None
            with contextlib.suppress(OSError):
                path.unlink()  # left by a run that was killed: taken over
            continue
        except OSError as exc:
            raise OutputError(f"{out}: cannot write in the output folder ({exc.strerror or exc}).") from exc
        flock(fd)
        os.write(fd, json.dumps(me).encode("utf-8"))
        break
    else:
        raise OutputError(f"{out}: the folder's run lock {path} could not be taken; delete it and try again.")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if _holder(path) == me:
                path.unlink()
        os.close(fd)  # and with it the flock


def _held(path: Path, holder: dict | None) -> bool:
    """Whether a live run holds the lock file ``path`` (written by ``holder``)."""
    if holder is not None and holder.get("host") != socket.gethostname():
        return True  # another machine's run on a shared folder: it cannot be checked from here
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        free = flock(fd, exclusive=False)
    finally:
        os.close(fd)
    if free is False:
        return True
    if free is None:  # no flock to ask: the process number and start time decide
        return holder is not None and _alive(holder)
    # A lock from a version that took no flock says only its process number.
    return holder is not None and "started" not in holder and _alive(holder)


def _age_s(path: Path) -> float:
    """Seconds since ``path`` was last written (infinite when it cannot be read)."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _holder(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # unreadable or half-written: a run killed while taking it
    return data if isinstance(data, dict) else None


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's run on a shared folder: it cannot be checked from here
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    # A process number is used again: a container restarted after its run was killed gives the new run the
    # same number (1, often). When the lock says when its process started, that must match too.
    started = holder.get("started")
    if started is not None and _start_time(pid) not in (None, started):
        return False
    if pid == os.getpid():
        return started is None or started == _start_time(pid)
    if os.name == "nt":
        return True  # there os.kill(pid, 0) ends the process: a live run is assumed, as the message says
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux); None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Field 22 counts from the end of the command name, which may itself hold spaces and brackets.
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
