"""Fixtures shared by the compiler tests: front-end runs and diagnostics as plain text.

Diagnostics are rendered with :func:`compiler.render.render_text` exactly as ``dfc check``
prints them (file:line:col, source line, caret, hint), without colours, so snapshots show
what a person sees.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from compiler.api import FrontEndResult
from compiler.render import render_text

Renderer = Callable[[FrontEndResult], str]


def render_plain(result: FrontEndResult) -> str:
    """All diagnostics of a front-end run as plain text, in position order."""
    name = result.source.name
    return "".join(render_text(d, result.source, name).plain for d in result.diagnostics)


@pytest.fixture
def render() -> Renderer:
    return render_plain
