"""The LALR automaton of the grammar, driven by one tight loop that builds trees or values.

Lark's parser, its tables and its tree-building callbacks stay the definition: the tables are
read from the Lark parser of :func:`compiler.parser.lark_parser`, and each rule's callback chain
(filter out anonymous tokens, insert ``None`` for an absent ``[optional]``, splice in inlined
``_rules``, hand up a single child for a ``?rule``) is read into a :class:`_Reduce` record that
:func:`drive` applies itself. That avoids, per reduction, Lark's three nested callback calls,
its position propagation and the throw-away trees of inlined rules, which together cost
several times the parse itself. The trees are equal to Lark's, node positions included
(``tests/compiler/test_parser.py``). Each action is one flat tuple with the rule's callback in
it (:func:`automaton`), and the pass-through reductions of ``?rules`` (``?seq_expr:
race_expr``) take no step of their own: where a reduction leaves the automaton includes them
(:meth:`Tables.target`), and a syntax error is still found where Lark's parser finds it
(``tests/compiler/test_lalr.py``).

Every tree's ``meta`` carries ``start_pos``/``end_pos`` and the 1-based ``line``/``column``/
``end_line``/``end_column`` of its first and last token, as Lark's ``propagate_positions``
would set them. Instead of trees, the caller may give one callback per rule that makes the
rule's value from its kept children (Lark's Transformer-in-parser mode): lowering builds the
IR that way (:mod:`compiler.lower`), without a tree in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
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

from compiler.lexer import END_OF_STATEMENT, Lexeme


@dataclass(frozen=True, slots=True)
class _Reduce:
    """How one grammar rule reduces the values on top of the stack.

    ``pick`` lists the kept children as ``(index, splice)`` (splice: an inlined ``_rule``
    whose children go in its place), ``None`` standing for a placeholder; it is None when all
    children are kept as they are. ``keep`` is ``pick`` compiled: it reads the kept children
    off the top of the driver's stack. ``passthrough`` marks rules like ``?seq_expr: race_expr``
    that only hand their one child up the precedence ladder.
    """

    size: int
    name: str  # the rule's name, for the goto table
    data: Any  # the tree's ``data`` exactly as Lark sets it (the alias, or the rule's name)
    key: str  # ``data`` as a plain string, for looking up a callback
    pick: tuple[tuple[int, bool] | None, ...] | None
    keep: Callable[[list[Any]], list[Any]] = field(compare=False)
    single: bool  # ``?rule``: a lone kept child is handed up instead of a new tree
    inline: bool  # ``_rule``: its children are spliced into the parent, no tree is kept
    passthrough: bool
    # The goto table's column of this rule, indexed by the state below the reduced children
    # (-1 where the table has no entry).
    goto: list[int] = field(default_factory=list, compare=False)


# An LALR action as :func:`tables` reads it: (True, next_state) to shift, or (False, _Reduce).
_Action = tuple[bool, Any]

# What :func:`drive` does for an action, the first item of an :data:`Step`.
SHIFT = 0
PASS = 1  # a pass-through reduction: the value stays, the top state changes
REDUCE = 2  # the rule's callback makes its value
INLINE = 3  # an inlined ``_rule``: its kept children are its value, spliced into the parent
SINGLE = 4  # a ``?rule``: a lone kept child is handed up, else the callback makes the value
# The ``keep`` of a rule whose one child is an inlined rule, whose list it takes over (the
# ``keep`` of a rule whose one child is kept as it is is None).
SPLICED: Any = object()
# An action ready for the driver's loop, one flat tuple unpacked in one step:
# (SHIFT, next_state, None, None, 0), or (PASS | REDUCE | INLINE | SINGLE, targets, keep,
# callback, cut) where ``targets`` gives the top state after the reduction by the state below
# its symbols (:meth:`Tables.target`), ``keep`` reads its kept children off the stack and
# ``cut`` is where its symbols begin on the stack (0 for a one-symbol rule, which leaves the
# stack as long as it was).
Step = tuple[int, Any, Any, Any, int]


@dataclass(frozen=True)
class Tables:
    """The LALR tables of the Lark parser, prepared for :func:`drive`."""

    actions: dict[int, dict[str, _Action]]
    gotos: dict[int, dict[str, int]]
    start: int
    end: int
    # The callbacks that make Lark's trees, one per ``_Reduce.key``.
    trees: dict[str, Callback]
    # The top states after the reduction of each (state, lookahead), by the state below
    # (:meth:`target`, None until the parser first meets it). Shared by every
    # :class:`Automaton`: they do not depend on callbacks.
    targets: dict[tuple[int, str], list[int | None]] = field(default_factory=dict)

    def target(self, state: int, kind: str, below: int) -> int:
        """Where the reduction of ``state`` under ``kind`` leaves the automaton.

        That is the rule's goto from the state ``below`` its symbols, and then every
        pass-through reduction (``?seq_expr: race_expr``) the same lookahead makes next:
        those only replace the top state, so the driver skips them altogether. A pass-through
        reduction always follows another reduction (its one child is a rule), so it never
        takes a step of its own.
        """
        rule: _Reduce = self.actions[state][kind][1]
        found = rule.goto[below]
        if found != self.end:  # the statement is complete: nothing follows
            found = self.chain(below, found, kind)
        self.targets[state, kind][below] = found
        return found

    def chain(self, below: int, top: int, kind: str) -> int:
        """Apply consecutive pass-through reductions: each replaces only the top state."""
        found = top
        while True:
            shift, arg = self.actions[found].get(kind, (True, None))
            if shift or not arg.passthrough:
                break
            found = self.gotos[below][arg.name]
        return found


@dataclass(frozen=True)
class Automaton:
    """The tables with each rule's callback placed in its actions, for :func:`drive`."""

    tables: Tables
    rows: list[dict[str, Step]]  # by state (states are 0, 1, ...): lookahead -> action


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
    states = range(len(actions))
    if sorted(actions) != list(states):
        raise NotImplementedError("the driver needs the LALR states numbered 0, 1, ...")
    for reduce in reduces.values():
        reduce.goto.extend(gotos[state].get(reduce.name, -1) for state in states)
    trees: dict[str, Callback] = {r.key: partial(_tree, r.data) for r in reduces.values()}
    start, end = table.start_states["start"], table.end_states["start"]
    targets: dict[tuple[int, str], list[int | None]] = {
        (state, kind): [None] * len(states)
        for state, row in actions.items()
        for kind, (shift, _) in row.items()
        if not shift
    }
    return Tables(actions, gotos, start, end, trees, targets)


def automaton(callbacks: Mapping[str, Callback] | None = None) -> Automaton:
    """The automaton whose reductions call ``callbacks`` (Lark's trees when None).

    Build it once and drive many statements with it: each action becomes the flat tuple
    :func:`drive` unpacks (:data:`Step`), with the rule's callback in it.
    """
    table = tables()
    if callbacks is None:
        return _tree_automaton()
    rows: list[dict[str, Step]] = []
    for state in range(len(table.actions)):
        row: dict[str, Step] = {}
        for kind, (shift, arg) in table.actions[state].items():
            row[kind] = _step(table, state, kind, shift, arg, callbacks)
        rows.append(row)
    return Automaton(table, rows)


@cache
def _tree_automaton() -> Automaton:
    return automaton(tables().trees)


@cache
def recognizer() -> Automaton:
    """The automaton that only recognises: every rule's value is None."""
    return automaton(dict.fromkeys(tables().trees, _nothing))


def _nothing(owner: Any, kept: list[Any], first: Bound, last: Bound) -> None:
    return None


def _step(
    table: Tables,
    state: int,
    kind: str,
    shift: bool,
    arg: Any,
    callbacks: Mapping[str, Callback],
) -> Step:
    if shift:
        return (SHIFT, arg, None, None, 0)
    rule: _Reduce = arg
    targets = table.targets[state, kind]
    if rule.passthrough:
        return (PASS, targets, None, None, 0)
    cut = 3 - 3 * rule.size if rule.size > 1 else 0
    keep: Any = rule.keep
    if rule.size == 1 and rule.pick in (None, ((0, False),)):
        keep = None  # the commonest: one child, kept as it is
    elif rule.size == 1 and rule.pick == ((0, True),):
        keep = SPLICED  # one inlined child: its list is the rule's list
    if rule.inline:
        return (INLINE, targets, keep, None, cut)
    code = SINGLE if rule.single else REDUCE
    return (code, targets, keep, callbacks[rule.key], cut)


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
        key=str(builder.args[0]),
        pick=pick,
        keep=_keeper(size, pick),
        single=single,
        inline=name.startswith("_"),
        passthrough=passthrough,
    )


def _keeper(size: int, pick: tuple[tuple[int, bool] | None, ...] | None) -> Any:
    """A function that reads a rule's kept children off the top of the driver's stack.

    The stack holds (state, value, first token) per symbol, so child ``i`` of ``size`` has its
    value at ``-3 * (size - i) + 1``. The driver calls one per reduction, so it is compiled
    from the rule's ``pick`` into one list display (``[v[-8], *v[-2], None]``) instead of
    looping over ``pick`` each time.
    """

    def value(index: int) -> str:
        return f"v[{1 - 3 * (size - index)}]"

    if pick is None:
        items = [value(index) for index in range(size)]
    else:
        items = [
            "None" if entry is None else ("*" if entry[1] else "") + value(entry[0])
            for entry in pick
        ]
    if items and items[0].startswith("*") and not any(item.startswith("*") for item in items[1:]):
        # The first kept child is spliced: the list of an inlined rule (``__args_star: arg |
        # __args_star "," arg``), which nothing but its place on the stack refers to, and that
        # place is overwritten by this reduction's value. It is extended in place instead of
        # copied, so that a list of n items is built in n steps, not n copies.
        items[0] = items[0][1:]
        if len(items) == 1:
            return eval(f"lambda v: {items[0]}")
        if len(items) == 2:
            return eval(f"lambda v: (kept := {items[0]}).append({items[1]}) or kept")
        return eval(f"lambda v: (kept := {items[0]}).extend(({', '.join(items[1:])})) or kept")
    return eval(f"lambda v: [{', '.join(items)}]")  # built above from integers only


_new_tree = object.__new__

# The first or last token of a rule's span. Lark types a token's positions as optional; every
# token the lexer makes has them all.
Bound = Any
# A rule's value made by the caller instead of a tree: from the kept children, and the first and
# last token the rule spans (for positions). Called with the object the callbacks belong to
# first (``drive``'s ``owner``), so that one automaton serves every instance of a class.
Callback = Callable[[Any, list[Any], Bound, Bound], Any]


def drive(
    tokens: Sequence[Bound],
    *,
    complete: bool,
    machine: Automaton | None = None,
    owner: Any = None,
) -> Any:
    """Run the LALR automaton over a statement's tokens; raises UnexpectedToken.

    The tokens are :data:`compiler.lexer.Lexeme` tuples; to build Lark's trees, each carries
    the Lark token of the lexeme as an eighth item. Without ``machine`` each rule makes Lark's
    tree and the result is the statement's tree; with an
    :func:`automaton` of callbacks, each rule's value is ``callback(owner, kept_children,
    first, last)`` (the callback of the tree's ``data``, an alias or the rule's name) and the
    result is the top rule's value. With ``complete=False`` only the tokens are fed (no end of
    statement), to find a syntax error before a lexical one; the result is then None.
    """
    if machine is None:
        machine = _tree_automaton()
    table = machine.tables
    rows = machine.rows
    end_state = table.end
    state = table.start  # the state on top of the stack
    # Three entries per symbol on the stack, flat in one list: its state, its value and its
    # first token (where its positions start), so that a shift is one extension and a
    # reduction one deletion. The last token of a reduction is always the token shifted last
    # (rules are never empty).
    stack: list[Any] = [state, None, None]
    last: Bound = None
    stream: Iterable[Bound] = tokens
    if complete:
        stream = [*tokens, _end_of(tokens[-1])]
    # This loop runs once per token and once per reduction of every statement: it is written
    # for speed (locals for everything, one unpacking per action, no calls but the rule's own).
    for token in stream:
        kind = token[0]
        while True:
            try:
                code, arg, keep, callback, cut = rows[state][kind]
            except KeyError:
                expected = set(rows[state])
                raise UnexpectedToken(token, expected) from None  # type: ignore[no-untyped-call]
            if code == SHIFT:
                state = arg
                stack += (state, token, token)
                last = token
                break
            if code == PASS:  # (pass-through reductions after a reduction are skipped)
                # The value stays, only the top state changes.
                target = arg[stack[-6]]
                if target is None:
                    target = table.target(state, kind, stack[-6])
                state = stack[-3] = target
                continue
            if cut:
                kept = keep(stack)
                # The reduced run leaves one symbol, in the place of its first: only the
                # others go, and the first's state and value are overwritten below.
                del stack[cut:]
            elif keep is None:  # the commonest rules of one child need no call
                kept = [stack[-2]]
            elif keep is SPLICED:
                kept = stack[-2]
            else:
                kept = keep(stack)
            value: Any
            if code == REDUCE:
                value = callback(owner, kept, stack[-1], last)
            elif code == INLINE:
                value = kept  # spliced into the parent by its ``pick``
            elif len(kept) == 1:
                # Handed up as it is; a tree keeps its own positions, as with Lark's propagation.
                value = kept[0]
            else:
                value = callback(owner, kept, stack[-1], last)
            target = arg[stack[-6]]
            if target is None:
                target = table.target(state, kind, stack[-6])
            state = target
            if state == end_state:
                return value
            stack[-3] = state
            stack[-2] = value
    return None


def _end_of(last: Bound) -> Lexeme:
    """The end-of-statement token, placed at the statement's last token as Lark places it."""
    return (END_OF_STATEMENT, *last[1:7])


def _tree(data: Any, owner: Any, children: list[Any], first: Bound, last: Bound) -> Tree[Token]:
    """Lark's tree of one reduction, with the positions its propagation would give it.

    Its tokens are the Lark tokens the lexemes carry (their eighth item).
    """
    tree = _new_tree(Tree)
    tree.data = data
    tree.children = [child[7] if type(child) is tuple else child for child in children]
    meta = _new_tree(Meta)
    meta.empty = False
    meta.start_pos = first[1]
    meta.line = first[3]
    meta.column = first[4]
    meta.end_pos = last[2]
    meta.end_line = last[5]
    meta.end_column = last[6]
    tree._meta = meta
    return tree
