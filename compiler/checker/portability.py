"""Portability (DFC601): where pg_durable would group an expression differently from dfc.

pg_durable has no parser of its own: its operators are PostgreSQL operators, which all share one
precedence level and group left to right, with the prefix ``@>`` binding tightest (behaviour
§2.2). dfc uses the documented precedence (DSL.md §2). The two readings of an unparenthesised
expression agree exactly when every operand to the *right* of an operator (and the operand of
``@>``) is a single term: a left operand groups the same way under both rules. So every right
operand that is itself an operator expression without parentheses is a place where the meanings
differ, and wrapping it in parentheses makes both read it as dfc does; that is the quick fix.

One case is let through because the meaning is the same: ``a ~> b |=> 'x'`` names the sequence
in pg_durable and ``b`` in dfc, and a named sequence stores its last step's result.

This works on the parse tree (Lark trees stay inside the compiler): the IR no longer records
which operands were parenthesised.
"""

from __future__ import annotations

from lark import Token, Tree

from compiler.checker.context import CheckContext
from compiler.diagnostics import Edit, Fix

_OPERATOR = {
    "seq": "~>",
    "race": "|",
    "join": "&",
    "if_then": "?>",
    "if_else": "?>",
    "bind": "|=>",
    "undo": "<->",
    "concat": "||",
    "loop": "@>",
}
_BINARY = frozenset(_OPERATOR) - {"loop"}


def check(ctx: CheckContext) -> None:
    if ctx.parsed is None:
        return
    for statement in ctx.parsed.statements:
        if statement.tree is None:
            continue
        for tree in _operator_trees(statement.tree):
            for operator, operand in _right_operands(tree):
                if _harmless(tree, operand):
                    continue
                _report(ctx, operator, operand)


def _operator_trees(root: Tree[Token]) -> list[Tree[Token]]:
    """The operator subtrees of ``root``, in the order of Lark's ``iter_subtrees``.

    Parse trees share no subtrees, so Lark's bookkeeping against visiting one twice (and the
    calls on every other kind of subtree) can be left out.
    """
    queue = [root]
    for tree in queue:  # grows while it is read: breadth first, children right to left
        for child in reversed(tree.children):
            if type(child) is Tree:
                queue.append(child)
    return [tree for tree in reversed(queue) if tree.data in _OPERATOR]


def _right_operands(tree: Tree[Token]) -> list[tuple[str, Tree[Token]]]:
    kind = str(tree.data)
    children = [c for c in tree.children if isinstance(c, Tree)]
    if kind in ("seq", "race", "join"):
        pairs = [(_OPERATOR[kind], c) for c in children[1:]]
    elif kind == "if_then":
        pairs = [("?>", children[1])]
    elif kind == "if_else":
        pairs = [("?>", children[1]), ("!>", children[2])]
    elif kind == "undo":
        pairs = [("<->", children[1])]
    elif kind == "loop":
        pairs = [("@>", children[0])]
    else:
        return []
    return [(op, child) for op, child in pairs if str(child.data) in _BINARY]


def _harmless(parent: Tree[Token], operand: Tree[Token]) -> bool:
    if str(parent.data) != "seq" or str(operand.data) != "bind":
        return False
    inner = operand.children[0]
    return not (isinstance(inner, Tree) and str(inner.data) in _BINARY)


def _report(ctx: CheckContext, operator: str, operand: Tree[Token]) -> None:
    start, end = operand.meta.start_pos, operand.meta.end_pos
    inner = _OPERATOR[str(operand.data)]
    first = _first_term(ctx, operand)
    span = ctx.source.span(start, end)
    fix = Fix(
        "Add parentheses (same meaning in dfc and pg_durable)",
        (Edit(ctx.source.span(start, start), "("), Edit(ctx.source.span(end, end), ")")),
    )
    ctx.sink.add(
        "DFC601",
        span,
        f"pg_durable reads this differently: it applies {operator} to {first} alone, then "
        f"{inner} to the result",
        hint=f"dfc gives {inner} precedence over {operator} (DSL.md §2); pg_durable applies all "
        "its operators left to right. Parentheses make both read it the same way.",
        fixes=(fix,),
    )


def _first_term(ctx: CheckContext, tree: Tree[Token]) -> str:
    node: Tree[Token] | Token = tree
    while isinstance(node, Tree) and str(node.data) in _BINARY and node.children:
        node = node.children[0]
    if isinstance(node, Token):
        start, end = node.start_pos or 0, node.end_pos or 0
    else:
        start, end = node.meta.start_pos, node.meta.end_pos
    text = " ".join(ctx.source.text[start:end].split())
    return text if len(text) <= 30 else text[:27] + "..."
