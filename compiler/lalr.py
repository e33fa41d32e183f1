"""The LALR automaton of the grammar, driven by one tight loop that builds Lark's trees.

Lark's parser, its tables and its tree-building callbacks stay the definition: the tables are
read from the Lark parser of :func:`compiler.parser.lark_parser`, and each rule's callback chain
(filter out anonymous tokens, insert ``None`` for an absent ``[optional]``, splice in inlined
``_rules``, hand up a single child for a ``?rule``) is read into a :class:`_Reduce` record that
:func:`drive` applies itself. That avoids, per reduction, Lark's three nested callback calls,
its position propagation and the throw-away trees of inlined rules, which together cost
several times the parse itself. The trees are equal to Lark's, node positions included
(``tests/compiler/test_parser.py``).

Every tree's ``meta`` carries ``start_pos``/``end_pos`` and the 1-based ``line``/``column``/
``end_line``/``end_column`` of its first and last token, as Lark's ``propagate_positions``
would set them, so lowering makes spans without searching for line numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from lark import Token, Tree
from lark.exceptions import UnexpectedToken
from lark.parse_tree_builder import (
    ChildFilterLALR,
    ChildFilterLALR_NoPlaceholders,
    ExpandSingleChild,
)
from lark.tree import Meta


@dataclass(frozen=True, slots=True)
class _Reduce:
    """How one grammar rule reduces the values on top of the stack.

    ``pick`` lists the kept children as ``(index, splice)`` (splice: an inlined ``_rule``
    whose children go in its place), ``None`` standing for a placeholder; it is None when all
    children are kept as they are. ``passthrough`` marks rules like ``?seq_expr: race_expr``
    that only hand their one child up the precedence ladder.
    """

    size: int
    name: str  # the rule's name, for the goto table
    data: Any  # the tree's ``data`` exactly as Lark sets it (the alias, or the rule's name)
    pick: tuple[tuple[int, bool] | None, ...] | None
    single: bool  # ``?rule``: a lone kept child is handed up instead of a new tree
    inline: bool  # ``_rule``: its children are spliced into the parent, no tree is kept
    passthrough: bool


class _Inline:
    """The children of an inlined ``_rule`` on their way into the parent.

    ``first`` and ``last`` are where its positions come from: the token or tree meta that
    starts and ends it (kept as references, since few runs end up first or last in a parent).
    """

    __slots__ = ("children", "first", "last")

    def __init__(self, children: list[Any], first: Any, last: Any) -> None:
        self.children = children
        self.first = first
        self.last = last


# An LALR action: (True, next_state) to shift, or (False, _Reduce) to reduce.
_Action = tuple[bool, Any]


@dataclass(frozen=True)
class Tables:
    """The LALR tables of the Lark parser, prepared for :func:`drive`."""

    actions: dict[int, dict[str, _Action]]
    gotos: dict[int, dict[str, int]]
    start: int
    end: int
    # (state below, state on top, lookahead) -> the top state after every pass-through
    # reduction that follows; filled as the parser meets new combinations.
    chains: dict[tuple[int, int, str], int] = field(default_factory=dict)

    def chain(self, below: int, top: int, kind: str) -> int:
        """Apply consecutive pass-through reductions: each replaces only the top state."""
        key = (below, top, kind)
        found = self.chains.get(key)
        if found is None:
            found = top
            while True:
                shift, arg = self.actions[found].get(kind, (True, None))
                if shift or not arg.passthrough:
                    break
                found = self.gotos[below][arg.name]
            self.chains[key] = found
        return found


@cache
def tables() -> Tables:
    from lark.parsers.lalr_analysis import Shift

    from compiler.parser import lark_parser

    frontend: Any = lark_parser().parser
    inner = frontend.parser.parser
    table = inner.parse_table
    reduces = {rule: _reduce(rule, callback) for rule, callback in inner.callbacks.items()}
    actions: dict[int, dict[str, _Action]] = {}
    gotos: dict[int, dict[str, int]] = {}
    for state, row in table.states.items():
        actions[state] = {}
        gotos[state] = {}
        for symbol, (action, arg) in row.items():
            if symbol.isupper():
                shift = action is Shift
                actions[state][str(symbol)] = (shift, arg if shift else reduces[arg])
            else:
                gotos[state][str(symbol)] = arg
    return Tables(actions, gotos, table.start_states["start"], table.end_states["start"])


def _reduce(rule: Any, callback: Any) -> _Reduce:
    """Read a rule's Lark callback chain (see ``lark.parse_tree_builder``) into a record.

    Lark wraps ``partial(Tree, data)`` in a child filter and, for a ``?rule`` without alias,
    in ``ExpandSingleChild``; the filter runs first. Any other wrapper would mean Lark options
    this module does not reproduce, so it refuses them.
    """
    size = len(rule.expansion)
    if size == 0:
        raise NotImplementedError(f"empty rule {rule}: the driver needs at least one child")
    pick: tuple[tuple[int, bool] | None, ...] | None = None
    single = False
    builder = callback
    if isinstance(builder, ChildFilterLALR | ChildFilterLALR_NoPlaceholders):
        picked: list[tuple[int, bool] | None] = []
        for entry in builder.to_include:
            index, splice = entry[0], entry[1]
            nones = entry[2] if len(entry) > 2 else 0
            picked.extend([None] * nones)
            picked.append((index, splice))
        picked.extend([None] * (getattr(builder, "append_none", None) or 0))
        pick = tuple(picked)
        builder = builder.node_builder
    if isinstance(builder, ExpandSingleChild):
        single = True
        builder = builder.node_builder
    if not (isinstance(builder, partial) and builder.func is Tree and len(builder.args) == 1):
        raise NotImplementedError(f"unsupported tree callback for {rule}: {builder!r}")
    name = str(rule.origin.name)  # Lark's names are Token objects: slow dictionary keys
    passthrough = single and pick is None and size == 1 and not rule.expansion[0].is_term
    return _Reduce(
        size=size,
        name=name,
        data=builder.args[0],
        pick=pick,
        single=single,
        inline=name.startswith("_"),
        passthrough=passthrough,
    )


_new_tree = object.__new__


def drive(tokens: list[Token], *, complete: bool) -> Tree[Token] | None:
    """Run the LALR automaton over a statement's tokens; raises UnexpectedToken.

    With ``complete=False`` only the tokens are fed (no end of statement), to find a syntax
    error before a lexical one; the result is then None.
    """
    table = tables()
    actions = table.actions
    gotos = table.gotos
    chains = table.chains
    end_state = table.end
    state_stack = [table.start]
    value_stack: list[Any] = []
    stream: Iterable[Token] = tokens
    if complete:
        stream = [*tokens, Token.new_borrow_pos("$END", "", tokens[-1])]
    for token in stream:
        kind = token.type
        while True:
            row = actions[state_stack[-1]]
            try:
                shift, arg = row[kind]
            except KeyError:
                raise UnexpectedToken(token, set(row)) from None  # type: ignore[no-untyped-call]
            if shift:
                state_stack.append(arg)
                value_stack.append(token)
                break
            rule: _Reduce = arg
            if rule.passthrough:
                # The value stays, only the top state changes.
                below, top = state_stack[-2], state_stack[-1]
                target = chains.get((below, top, kind))
                if target is None:
                    target = table.chain(below, top, kind)
                state_stack[-1] = target
                continue
            size = rule.size
            children = value_stack[-size:]
            del value_stack[-size:]
            del state_stack[-size:]
            value = _build(rule, children)
            target = gotos[state_stack[-1]][rule.name]
            if target == end_state:
                tree: Tree[Token] = value
                return tree
            state_stack.append(target)
            value_stack.append(value)
    return None


def _build(rule: _Reduce, children: list[Any]) -> Any:
    """The value of one reduction, as Lark's callback chain would make it."""
    pick = rule.pick
    if pick is None:
        kept = children
    else:
        kept = []
        for entry in pick:
            if entry is None:
                kept.append(None)
            elif entry[1]:
                kept.extend(children[entry[0]].children)
            else:
                kept.append(children[entry[0]])
    if rule.single and len(kept) == 1:
        # Handed up as it is; a tree keeps its own positions, as with Lark's propagation.
        return kept[0]
    first = children[0]
    last = children[-1]
    if type(first) is Tree:
        first = first.meta
    elif type(first) is _Inline:
        first = first.first
    if type(last) is Tree:
        last = last.meta
    elif type(last) is _Inline:
        last = last.last
    if rule.inline:
        return _Inline(kept, first, last)
    tree = _new_tree(Tree)
    tree.data = rule.data
    tree.children = kept
    meta = _new_tree(Meta)
    meta.empty = False
    meta.start_pos = first.start_pos
    meta.line = first.line
    meta.column = first.column
    meta.end_pos = last.end_pos
    meta.end_line = last.end_line
    meta.end_column = last.end_column
    tree._meta = meta
    return tree
