"""Cleanup that runs to its end: while staging is being returned to the previous release or the
run's processes and locks are released, a further Ctrl-C or SIGTERM is noted, not obeyed.

Without this, Ctrl-C pressed four or five times lands in the middle of the recovery or of pytest's
own unconfigure: staging stays on the candidate, a process of it keeps running, and the run ends
with a traceback and exit 130 (issue 25). Every step inside is bounded (script timeouts, kill
grace), and SIGKILL still ends everything.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred(what: str) -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM noted on stderr (once) instead of raising. Outside
    the main thread (where signals cannot be handled) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    said = False

    def note(signum: int, frame: FrameType | None) -> None:
        nonlocal said
        if not said:
            said = True
            print(f"\npredeploy: interrupted again: {what} first (bounded by its timeouts; kill -9 ends it at once)", file=sys.stderr, flush=True)

    old = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    for sig in _SIGNALS:
        signal.signal(sig, note)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


_held: dict[int, object] = {}


def hold(what: str) -> None:
    """From now until :func:`release`, SIGINT and SIGTERM are noted, not obeyed: the run was
    interrupted once and is winding down (recovery, reports, stopping staging, releasing locks);
    a second Ctrl-C must not cut that short with a traceback. Main thread only."""
    if _held or threading.current_thread() is not threading.main_thread():
        return
    said = False

    def note(signum: int, frame: FrameType | None) -> None:
        nonlocal said
        if not said:
            said = True
            print(f"\npredeploy: interrupted again: {what} first (kill -9 ends it at once)", file=sys.stderr, flush=True)

    for sig in _SIGNALS:
        _held[sig] = signal.getsignal(sig)
        signal.signal(sig, note)


def release() -> None:
    """Obey SIGINT and SIGTERM again, as before :func:`hold`."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in list(_held.items()):
        signal.signal(sig, handler)  # type: ignore[arg-type]  # what getsignal returned
    _held.clear()
