"""Keep the cyclic garbage collector off the objects a process keeps for its lifetime.

A full collection walks every tracked object: with LangGraph, LangChain, pydantic and our
packages imported, about 110,000 objects and 65 ms of CPU on the benchmark machine, all of
it on the event loop while the steps of every run wait. A fan-out of 2,000 children set off
two or three of them (0.4-0.6 s of a 0.75 s container). Modules, classes, functions and the
compiled graph live as long as the process, so once, when the first orchestrator opens, they
are moved to the collector's permanent generation (`gc.freeze()`); later collections walk
only what runs create. Frozen objects are still freed when their reference count drops to
zero; only a reference cycle among them would outlive its use. An application that wants
them collected again calls `gc.unfreeze()`.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_frozen = False


def freeze_long_lived() -> bool:
    """Freeze what the process holds now, the first time it is called; True that time."""
    global _frozen
    with _lock:
        if _frozen:
            return False
        gc.freeze()
        _frozen = True
        return True
