"""Result names (DFC3xx): every ``$name`` must be bound on every path that reaches it.

A forward data-flow pass over each workflow, in execution order. The state maps each name to
*definitely* or *maybe* bound:

* a sequence threads the state through its steps; nothing after a step that never completes is
  looked at (the loop rule reports it as unreachable);
* join branches each start from the state before the join and see only their own bindings;
  after the join every branch's bindings are definite (a join completes only when all do);
* race branches and if branches bind *maybe*, unless every branch binds the name;
* a loop body runs at least once; names bound anywhere in the loop are *maybe* bound at its
  start (from the second iteration on); after the loop the state is what holds at every exit
  (the while-condition turning false, or each ``df.break``).

A *maybe* use is an error unless it is null-safe (``$name?``, ``$name.col?``). References are
found in SQL text, HTTP url/body/header values, multipart parts and break values; names given to
``df.if_rows`` are uses too. The same pass checks ``$name.col`` against the columns the bound
step can return, and reports names that are bound but never used (hints).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from compiler import ir
from compiler.checker.context import RAW_TEXT_KINDS, CheckContext, raw_texts
from compiler.checker.results import NOT_STORED, ResultShape, result_shape, union
from compiler.diagnostics import Edit, Fix, Related
from compiler.irwalk import walk
from compiler.refs import Ref, scan_sql, scan_text
from compiler.source import Span

DEFINITE = 2
MAYBE = 1
# A state is never changed once made (a step that binds a name makes a new one), so branches
# can start from the same state object.
State = dict[str, int]
_UNSEEN = ResultShape("unseen")  # not a shape: marks a name whose shape is not worked out yet


def check(ctx: CheckContext) -> None:
    for workflow in ctx.workflows:
        _Flow(ctx, workflow).run()


@dataclass
class _LoopFrame:
    exits: list[State] = field(default_factory=list)


class _Flow:
    def __init__(self, ctx: CheckContext, workflow: ir.Workflow) -> None:
        self.ctx = ctx
        self.workflow = workflow
        self.bindings: dict[str, list[ir.Node]] = {}
        self.used: set[str] = set()
        self.shapes: dict[str, ResultShape | None] = {}
        self.loops: list[_LoopFrame] = []
        for node in ctx.steps(workflow).bound:
            assert node.bind is not None
            if isinstance(node, NOT_STORED):
                ctx.sink.add(
                    "DFC306",
                    node.bind.span,
                    f"the result of {_describe(node)} is never stored, so "
                    f"${node.bind.value} is never bound",
                    hint="Sleeps, schedule waits and breaks have no stored result; name the "
                    "step that produces the value instead.",
                )
                continue
            self.bindings.setdefault(node.bind.value, []).append(node)

    def run(self) -> None:
        self.flow(self.workflow.body, {})
        for name, nodes in self.bindings.items():
            if name in self.used:
                continue
            for node in nodes:
                assert node.bind is not None
                self.ctx.sink.add(
                    "DFC303",
                    node.bind.span,
                    f"result name {name!r} is never used",
                    hint=f"Refer to it as ${name} in a later step, or remove |=> '{name}'.",
                )

    # -- the flow ------------------------------------------------------------------------------

    def flow(self, node: ir.Node, state: State) -> State | None:
        """The state after ``node`` completes, or None when it never completes normally."""
        kind = type(node)
        bind = node.bind
        if kind is ir.Sql:  # most steps: a leaf whose uses are its SQL's references
            text = node.sql  # type: ignore[attr-defined]
            for ref in scan_sql(text.value).refs:
                self.use(ref, text, state)
            return state if bind is None else {**state, bind.value: DEFINITE}
        if kind in _USING_KINDS:
            self.uses(node, state)
        after = _FLOWS.get(kind, _Flow._leaf)(self, node, state)
        if after is not None and bind is not None and not isinstance(node, NOT_STORED):
            after = {**after, bind.value: DEFINITE}
        return after

    def _leaf(self, node: ir.Node, state: State) -> State | None:
        return state

    def _seq(self, node: ir.Seq, state: State) -> State | None:
        current: State = state
        for step in node.steps:
            after = self.flow(step, current)
            if after is None:
                return None
            current = after
        return current

    def _join(self, node: ir.Join, state: State) -> State | None:
        outs = [self.flow(branch, state) for branch in node.branches]
        self._parallel_binds(node)
        if any(out is None for out in outs):
            return None
        merged = dict(state)
        for out in outs:
            assert out is not None
            for name, status in out.items():
                merged[name] = max(merged.get(name, 0), status)
        return merged

    def _race(self, node: ir.Race, state: State) -> State | None:
        return _either([self.flow(branch, state) for branch in node.branches])

    def _if(self, node: ir.If, state: State) -> State | None:
        after = self.flow(node.condition, state)
        if after is None:
            return None
        then = self.flow(node.then, after)
        otherwise = self.flow(node.otherwise, after) if node.otherwise else after
        return _either([then, otherwise])

    def _if_rows(self, node: ir.IfRows, state: State) -> State | None:
        then = self.flow(node.then, state)
        otherwise = self.flow(node.otherwise, state) if node.otherwise else state
        return _either([then, otherwise])

    def _loop(self, node: ir.Loop, state: State) -> State | None:
        entry = dict(state)
        for inner in walk(node):
            if inner is not node and inner.bind is not None and not isinstance(inner, NOT_STORED):
                entry.setdefault(inner.bind.value, MAYBE)
        frame = _LoopFrame()
        self.loops.append(frame)
        try:
            after = self.flow(node.body, entry)
            if node.condition is not None and after is not None:
                after = self.flow(node.condition, after)
                if after is not None:
                    frame.exits.append(after)
        finally:
            self.loops.pop()
        return _either(frame.exits) if frame.exits else None

    def _break(self, node: ir.Break, state: State) -> State | None:
        if self.loops:
            self.loops[-1].exits.append(state)
        return None

    def _retry(self, node: ir.Retry, state: State) -> State | None:
        return self.flow(node.body, state)

    def _timeout(self, node: ir.Timeout, state: State) -> State | None:
        return self.flow(node.body, state)

    def _undo(self, node: ir.Undo, state: State) -> State | None:
        after = self.flow(node.body, state)
        if after is not None:
            # The compensating step runs later, when a following step fails; it sees at least
            # what the forward step bound. Its own bindings are not visible afterwards.
            self.flow(node.undo, after)
        return after

    def _parallel_binds(self, node: ir.Join) -> None:
        first: dict[str, ir.Node] = {}
        for branch in node.branches:
            names: dict[str, ir.Node] = {}
            for inner in walk(branch):
                if inner.bind is not None and not isinstance(inner, NOT_STORED):
                    names.setdefault(inner.bind.value, inner)
            for name, inner in names.items():
                earlier = first[name].bind if name in first else None
                if earlier is not None and inner.bind is not None:
                    self.ctx.sink.add(
                        "DFC309",
                        inner.bind.span,
                        f"{name!r} is also bound in an earlier branch of this join; after the "
                        "join it holds this branch's result",
                        hint="Give each branch's result its own name.",
                        related=(Related(earlier.span, "bound here too"),),
                    )
                elif name not in first:
                    first[name] = inner

    # -- uses ----------------------------------------------------------------------------------

    def uses(self, node: ir.Node, state: State) -> None:
        kind = type(node)
        if kind is ir.Sql:
            assert isinstance(node, ir.Sql)
            for ref in scan_sql(node.sql.value).refs:
                self.use(ref, node.sql, state)
        elif kind is ir.IfRows:
            assert isinstance(node, ir.IfRows)
            self.if_rows(node, state)
        elif kind in RAW_TEXT_KINDS:
            for text in raw_texts(node):
                for ref in scan_text(text.value).refs:
                    self.use(ref, text, state)

    def use(self, ref: Ref, text: ir.Text, state: State) -> None:
        name = ref.name
        self.used.add(name)
        status = state.get(name)
        if status == DEFINITE or (status == MAYBE and ref.nullsafe and not ref.star):
            shape = self.shapes.get(name, _UNSEEN)
            if shape is _UNSEEN:
                shape = self.shape(name)
            if shape is not None and shape.kind != "unknown":
                self.columns(ref, text, shape)
            return
        # The reference's place in the file is worked out only for a diagnostic.
        span = self.ctx.span(text, ref.start, ref.end)
        if status is None:
            self.unbound(ref.name, ref.spelled, span, text)
            return
        # Maybe bound, and not written null-safe (a row set has no null-safe form).
        fixes: tuple[Fix, ...] = ()
        if not ref.star and span != text.span:
            end = self.ctx.source.span(span.end, span.end)
            fixes = (Fix(f"Use {ref.spelled}? (NULL when not bound)", (Edit(end, "?"),)),)
        self.ctx.sink.add(
            "DFC302",
            span,
            f"${ref.name} is not bound on every path that reaches {ref.spelled}",
            hint=f"It is bound {self.where_maybe(ref.name)}. Write {ref.spelled}? where NULL "
            "is acceptable"
            + (" (row-set expansion has no null-safe form)" if ref.star else "")
            + ", or bind the name on every path.",
            fixes=fixes,
            related=self.related(ref.name),
        )

    def if_rows(self, node: ir.IfRows, state: State) -> None:
        name = node.result_name.value
        self.used.add(name)
        status = state.get(name)
        if status is None:
            self.unbound(name, name, node.result_name.span, None)
            return
        if status == MAYBE:
            self.ctx.sink.add(
                "DFC302",
                node.result_name.span,
                f"df.if_rows: {name!r} is not bound on every path that reaches it",
                hint=f"It is bound {self.where_maybe(name)}; df.if_rows fails when the name "
                "is not bound.",
                related=self.related(name),
            )
            return
        shape = self.shape(name)
        if shape is not None and shape.kind != "rows" and shape.kind != "unknown":
            self.ctx.sink.add(
                "DFC308",
                node.result_name.span,
                f"df.if_rows: {name!r} is not a SQL result, so it has no row count",
                hint="df.if_rows tests whether a SQL step returned rows; use ?> with a "
                "condition for other results.",
                related=self.related(name),
            )

    def unbound(self, name: str, spelled: str, span: Span, text: ir.Text | None) -> None:
        if name in self.bindings:
            self.ctx.sink.add(
                "DFC302",
                span,
                f"${name} is not bound yet where {spelled} is used",
                hint="It is bound only later, or in a parallel branch that this step cannot "
                "see (join and race branches see only their own names until the join ends).",
                related=self.related(name),
            )
            return
        candidates = sorted(self.bindings)
        close = difflib.get_close_matches(name, candidates, n=1)
        fixes: tuple[Fix, ...] = ()
        if close and text is not None and span != text.span:
            name_span = self.ctx.source.span(span.start + 1, span.start + 1 + len(name))
            fixes = (Fix(f"Use ${close[0]}", (Edit(name_span, close[0]),)),)
        elif close and text is None:
            fixes = (Fix(f"Use '{close[0]}'", (Edit(span, f"'{close[0]}'"),)),)
        hint = f"Did you mean ${close[0]}? " if close else ""
        hint += (
            f"Bind a step's result with |=> '{name}' before this step."
            if candidates
            else f"No step of this workflow is named; bind one with |=> '{name}'."
        )
        self.ctx.sink.add(
            "DFC301",
            span,
            f"unknown result name ${name}" if text is not None else f"unknown result name {name!r}",
            hint=hint,
            fixes=fixes,
        )

    def columns(self, ref: Ref, text: ir.Text, shape: ResultShape) -> None:
        """Check ``ref``'s column against the known ``shape`` of its name's result."""
        if ref.star:
            if shape.kind != "rows":
                self.ctx.sink.add(
                    "DFC305",
                    self.ctx.span(text, ref.start, ref.end),
                    f"${ref.name}.* expands the rows of a SQL result, but ${ref.name} is "
                    f"{_a(shape)}",
                    related=self.related(ref.name),
                )
            return
        if ref.column is not None:
            if shape.kind == "array":
                self.ctx.sink.add(
                    "DFC305",
                    self.ctx.span(text, ref.start, ref.end),
                    f"${ref.name} is the result of a join, a JSON array; it has no field "
                    f"{ref.column!r}",
                    hint="Name the join's branches (|=> 'name') and refer to them instead.",
                    related=self.related(ref.name),
                )
                return
            if shape.fields is not None and ref.column not in shape.fields:
                self.unknown_column(ref, self.ctx.span(text, ref.start, ref.end), shape)
                return
        if not ref.nullsafe and shape.kind == "rows" and shape.fields == ():
            self.ctx.sink.add(
                "DFC307",
                self.ctx.span(text, ref.start, ref.end),
                f"the statement bound to ${ref.name} returns no rows, so {ref.spelled} always "
                "fails",
                hint="Add RETURNING (INSERT, UPDATE, DELETE) or SELECT the value you need.",
                related=self.related(ref.name),
            )

    def unknown_column(self, ref: Ref, span: Span, shape: ResultShape) -> None:
        assert ref.column is not None and shape.fields is not None
        close = difflib.get_close_matches(ref.column, list(shape.fields), n=1)
        fixes: tuple[Fix, ...] = ()
        if close:
            start = span.start + len(ref.name) + 2
            col_span = self.ctx.source.span(start, start + len(ref.column))
            if self.ctx.source.text[col_span.start : col_span.end] == ref.column:
                fixes = (Fix(f"Use ${ref.name}.{close[0]}", (Edit(col_span, close[0]),)),)
        available = ", ".join(shape.fields) if shape.fields else "none"
        what = "column" if shape.kind == "rows" else "field"
        self.ctx.sink.add(
            "DFC304",
            span,
            f"${ref.name} has no {what} {ref.column!r}",
            hint=(f"Did you mean {close[0]!r}? " if close else "")
            + f"The {what}s of ${ref.name} are: {available}.",
            fixes=fixes,
            related=self.related(ref.name),
        )

    # -- helpers -------------------------------------------------------------------------------

    def shape(self, name: str) -> ResultShape | None:
        # The bindings are fixed before the flow starts: one shape per name serves every use.
        shape = self.shapes.get(name, _UNSEEN)
        if shape is not _UNSEEN:
            return shape
        nodes = self.bindings.get(name)
        shape = union([result_shape(n, self.ctx.catalogue) for n in nodes]) if nodes else None
        self.shapes[name] = shape
        return shape

    def related(self, name: str) -> tuple[Related, ...]:
        return tuple(
            Related(n.bind.span, f"${name} is bound here")
            for n in self.bindings.get(name, ())
            if n.bind is not None
        )[:3]

    def where_maybe(self, name: str) -> str:
        return "only on some paths (a race, an if branch, or later in a loop)"


# The kinds of step that use names themselves (others only through their children).
_USING_KINDS = frozenset({ir.Sql, ir.IfRows, *RAW_TEXT_KINDS})
# The ``_<kind>`` method of each node type that has one (the others are leaves).
_FLOWS: dict[type[ir.Node], Callable[[_Flow, Any, State], State | None]] = {
    cls: getattr(_Flow, f"_{cls.kind}")
    for cls in ir.NODE_TYPES.values()
    if hasattr(_Flow, f"_{cls.kind}")
}


def _either(outs: Sequence[State | None]) -> State | None:
    """The state after one of several alternatives, each of which may never complete."""
    live = [out for out in outs if out is not None]
    if not live:
        return None
    if len(live) == 1:
        return dict(live[0])
    names: set[str] = set().union(*live)
    # Definite after the alternatives: definite in every one of them.
    definite = {name for name, status in live[0].items() if status == DEFINITE}
    for out in live[1:]:
        definite.intersection_update([name for name, status in out.items() if status == DEFINITE])
    return {name: DEFINITE if name in definite else MAYBE for name in names}


def _describe(node: ir.Node) -> str:
    return {"sleep": "df.sleep", "wait_schedule": "df.wait_for_schedule", "break": "df.break"}[
        node.kind
    ]


def _a(shape: ResultShape) -> str:
    return {"object": "a JSON object", "array": "a JSON array (a join)"}.get(
        shape.kind, "not a row set"
    )


def iter_refs(node: ir.Node) -> Iterator[Ref]:
    """Every ``$name`` reference a step's own texts hold (not its children's)."""
    if isinstance(node, ir.Sql):
        yield from scan_sql(node.sql.value).refs
    else:
        for text in raw_texts(node):
            yield from scan_text(text.value).refs
