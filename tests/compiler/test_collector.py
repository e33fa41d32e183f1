"""The compiler's pauses of the cyclic garbage collector restore it and respect frozen objects."""

from __future__ import annotations

import gc

from compiler import collector
from compiler.api import compile_text


def test_a_pause_restores_the_collector_and_promotes_new_objects() -> None:
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():  # nested pauses leave the outer one in charge
            assert not gc.isenabled()
        assert not gc.isenabled()
        kept = [[i] for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert gc.get_count()[0] < 1000  # the young generation was emptied, not left to scan
    assert len(kept) == 1000


def test_objects_frozen_by_someone_else_stay_frozen() -> None:
    marker = [object()]  # a tracked object, frozen below
    gc.freeze()
    try:
        compile_text("'SELECT 1' ~> df.sleep(1)", "x.dsql")
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        # The collector's generations do not include the permanent one.
        assert not any(o is marker for o in gc.get_objects())
    finally:
        gc.unfreeze()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        compile_text("'SELECT 1'", "x.dsql")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_error_inside_a_pause_still_restores_the_collector() -> None:
    try:
        with collector.paused():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()
