"""Keeping Python's cyclic garbage collector out of the compiler's way.

Compiling a file allocates a great many small objects (tokens, trees, IR nodes, plans) that
all stay alive until the compilation ends and hold no reference cycles; the compiler frees
them by reference counting alone. The cyclic collector does not know that: left on, it scans
the growing heap again and again (it took about a third of the time), and merely switched off
and on again, it scans every object allocated meanwhile in its first collection afterwards
(about a sixth of the time on a 10,000-line file). So while a stage runs the collector is
paused, and when the outermost pause ends, the objects allocated meanwhile are moved straight
to the oldest generation (``gc.freeze()`` then ``gc.unfreeze()``, two constant-time list
splices): they are examined by the next full collection, like any other long-lived object,
instead of right away.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Pause the cyclic collector; nested pauses are free."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        # Promote only when nothing else froze objects: unfreezing would release those too.
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
