"""The typed IR: one frozen dataclass per node kind, each with the span it came from.

Text that came from string literals is a :class:`Text`: the decoded value (quotes and
escapes undone, continuation literals joined) plus a map from offsets in the decoded value
back to offsets in the file, so that a problem found later inside the text (a SQL syntax
error, a bad cron field, an unbound ``$name``) is reported at its exact place in the file.

Lark trees never leave the compiler's parser; everything downstream reads this IR.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from compiler.frozen import quick_init
from compiler.source import SourceFile, Span

# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class Text:
    """Decoded literal text with a map back to file offsets.

    ``breaks`` is a sorted tuple of ``(decoded_offset, file_offset)`` pairs; between two breaks
    the mapping is linear. An escape sequence (``''``, ``\\n``) gets a break of its own so that
    its decoded character maps to where the escape starts.
    """

    value: str
    span: Span
    breaks: tuple[tuple[int, int], ...]

    def file_offset(self, index: int) -> int:
        """The file offset of decoded character ``index`` (``len(value)`` maps past the end)."""
        if index >= len(self.value):
            return self.span.end - 1 if self.span.end > self.span.start else self.span.end
        position = bisect.bisect_right(self.breaks, (index, 1 << 62)) - 1
        decoded, offset = self.breaks[max(position, 0)]
        return offset + (index - decoded)

    def file_span(self, source: SourceFile, start: int, end: int) -> Span:
        """The file span of decoded characters ``[start, end)``."""
        if end <= start:
            offset = self.file_offset(start)
            return source.span(offset, offset)
        return source.span(self.file_offset(start), self.file_offset(end - 1) + 1)


@quick_init
@dataclass(frozen=True, slots=True)
class Json:
    """A JSON value given as a literal (``'…'::jsonb``, ``jsonb_build_object(…)``)."""

    value: Any
    span: Span


# ---------------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class Name:
    """A result name as written after ``|=>`` or in ``df.as``/``df.if_rows``."""

    value: str
    span: Span


@quick_init
@dataclass(frozen=True, kw_only=True)
class Node:
    """Base of all workflow steps. ``bind`` is the ``|=> 'name'`` given to this step."""

    kind: ClassVar[str] = "node"
    span: Span
    bind: Name | None = None

    def children(self) -> Iterator[Node]:
        """Direct child steps, in execution/source order."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Node):
                yield value
            elif isinstance(value, tuple):
                for item in value:
                    if isinstance(item, Node):
                        yield item

    def walk(self) -> Iterator[Node]:
        """This node and all its descendants, pre-order, without recursion limits."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(list(node.children())))


@quick_init
@dataclass(frozen=True, kw_only=True)
class Sql(Node):
    kind: ClassVar[str] = "sql"
    sql: Text


@quick_init
@dataclass(frozen=True, kw_only=True)
class Seq(Node):
    kind: ClassVar[str] = "seq"
    steps: tuple[Node, ...]


@quick_init
@dataclass(frozen=True, kw_only=True)
class Join(Node):
    kind: ClassVar[str] = "join"
    branches: tuple[Node, ...]


@quick_init
@dataclass(frozen=True, kw_only=True)
class Race(Node):
    kind: ClassVar[str] = "race"
    branches: tuple[Node, ...]


@quick_init
@dataclass(frozen=True, kw_only=True)
class If(Node):
    kind: ClassVar[str] = "if"
    condition: Node
    then: Node
    otherwise: Node | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class IfRows(Node):
    kind: ClassVar[str] = "if_rows"
    result_name: Name
    then: Node
    otherwise: Node | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class Loop(Node):
    kind: ClassVar[str] = "loop"
    body: Node
    condition: Node | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class Break(Node):
    kind: ClassVar[str] = "break"
    value: Text | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class Sleep(Node):
    kind: ClassVar[str] = "sleep"
    seconds: int
    seconds_span: Span


@quick_init
@dataclass(frozen=True, kw_only=True)
class WaitSchedule(Node):
    kind: ClassVar[str] = "wait_schedule"
    cron: Text
    time_zone: Text | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class WaitSignal(Node):
    kind: ClassVar[str] = "wait_signal"
    signal: Text
    timeout_seconds: int | None = None
    timeout_span: Span | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class Http(Node):
    kind: ClassVar[str] = "http"
    url: Text
    method: Text | None = None
    body: Text | None = None
    headers: Json | None = None
    timeout_seconds: int = 30
    timeout_span: Span | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class HttpMultipart(Node):
    kind: ClassVar[str] = "http_multipart"
    url: Text
    method: Text | None = None
    parts: Json | None = None
    headers: Json | None = None
    timeout_seconds: int = 30
    timeout_span: Span | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class Retry(Node):
    kind: ClassVar[str] = "retry"
    body: Node
    max_attempts: int
    initial_delay_seconds: float = 1.0
    backoff_factor: float = 2.0
    max_delay_seconds: float = 300.0
    args_span: Span | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class Timeout(Node):
    kind: ClassVar[str] = "timeout"
    body: Node
    seconds: float
    seconds_span: Span | None = None


@quick_init
@dataclass(frozen=True, kw_only=True)
class Undo(Node):
    kind: ClassVar[str] = "undo"
    body: Node
    undo: Node


# ---------------------------------------------------------------------------------------------
# Statements and programs
# ---------------------------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, kw_only=True)
class Workflow:
    """``SELECT df.start(...)``, a bare expression, or ``SELECT df.explain(...)``."""

    name: str
    body: Node
    span: Span
    form: str  # "start" | "bare" | "explain"
    label: Text | None = None
    database: Text | None = None
    transaction_mode: str = "caller"
    index: int = 0


@quick_init
@dataclass(frozen=True, kw_only=True)
class SetVar:
    """``SELECT df.setvar('name', 'value')``: declares ``{name}`` with a default value."""

    name: Text
    value: Text
    span: Span


Statement = Workflow | SetVar


@quick_init
@dataclass(frozen=True, kw_only=True)
class Comment:
    text: str
    span: Span


@quick_init
@dataclass(frozen=True, kw_only=True)
class Program:
    source: SourceFile = field(compare=False)
    statements: tuple[Statement, ...]

    @property
    def workflows(self) -> tuple[Workflow, ...]:
        return tuple(s for s in self.statements if isinstance(s, Workflow))

    @property
    def variables(self) -> dict[str, SetVar]:
        return {s.name.value: s for s in self.statements if isinstance(s, SetVar)}


NODE_TYPES: dict[str, type[Node]] = {
    cls.kind: cls
    for cls in (
        Sql,
        Seq,
        Join,
        Race,
        If,
        IfRows,
        Loop,
        Break,
        Sleep,
        WaitSchedule,
        WaitSignal,
        Http,
        HttpMultipart,
        Retry,
        Timeout,
        Undo,
    )
}
