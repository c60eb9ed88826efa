"""Child processes that must not outlive whoever started them (the supervisor, a trainer)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: Linux sends the child ``sig`` when its parent dies, even by SIGKILL,
    so a killed supervisor or worker leaves no Rasa server or ``rasa train`` running."""

    def arrange() -> None:
        if sys.platform.startswith("linux"):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, sig)

    return arrange
