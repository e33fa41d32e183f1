"""Lowering: parse trees to the typed IR.

One method per grammar rule (``_<rule>``) turns a subtree into a :class:`compiler.values.Value`;
calls are bound against the df.* catalogue (arity, names, types, defaults) and built by one
method per node function (``_build_<name>``). Every problem becomes a diagnostic; lowering
goes on after an error wherever the rest of the statement still makes sense, so independent
mistakes are all reported in one run.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from lark import Token, Tree

from compiler import collector, ir
from compiler.catalogue import Catalogue, Function, Param
from compiler.catalogue import load as load_catalogue
from compiler.diagnostics import DiagnosticSink, Severity
from compiler.naming import workflow_names
from compiler.parser import ParseResult
from compiler.source import SourceFile, Span
from compiler.strings import StringError, decode
from compiler.values import (
    BoolValue,
    CallValue,
    ErrorValue,
    IntValue,
    JsonValue,
    NodeValue,
    NullValue,
    NumValue,
    StrValue,
    Value,
)

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_JSON_BUILDERS = {
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
}
_TEXT_TYPES = {"text", "varchar", "character varying", "bpchar", "char", "name"}
_INT_TYPES = {"int", "integer", "int2", "int4", "int8", "bigint", "smallint"}
_NUMBER_TYPES = {"numeric", "decimal", "real", "float", "float4", "float8", "double precision"}
_JSON_TYPES = {"json", "jsonb"}
_BOOL_TYPES = {"bool", "boolean"}

Tok = Token
Subtree = Tree[Token]


def lower(parsed: ParseResult, catalogue: Catalogue | None = None) -> ir.Program:
    """Build the program of a parsed file; diagnostics go to ``parsed.diagnostics``."""
    lowerer = _Lowerer(parsed.source, parsed.diagnostics, catalogue or load_catalogue())
    with collector.paused():
        return lowerer.program(parsed)


class _Lowerer:
    def __init__(self, source: SourceFile, sink: DiagnosticSink, catalogue: Catalogue) -> None:
        self.source = source
        self.sink = sink
        self.catalogue = catalogue
        self._spans: dict[tuple[int, int], Span] = {}
        self._rules: dict[str, Callable[[Subtree], Value]] = {
            name[1:]: getattr(self, name)
            for name in dir(self)
            if name.startswith("_") and not name.startswith("__") and name[1:] in _RULES
        }

    # -- program and statements ---------------------------------------------------------------

    def program(self, parsed: ParseResult) -> ir.Program:
        statements: list[ir.Statement] = []
        for statement in parsed.statements:
            if statement.tree is None:
                continue
            try:
                lowered = self.statement(statement.tree)
            except RecursionError:
                first = statement.tokens[0]
                start = first.start_pos or 0
                self.sink.add(
                    "DFC111",
                    self.source.span(start, start + len(first)),
                    "this statement is nested too deeply to compile",
                    hint="Split the workflow into smaller workflows or flatten long chains.",
                )
                continue
            if lowered is not None:
                statements.append(lowered)
        return ir.Program(
            source=self.source, statements=tuple(_name_workflows(self.source, statements))
        )

    def statement(self, tree: Subtree) -> ir.Statement | None:
        stmt = tree.children[0]
        assert isinstance(stmt, Tree)
        expr = stmt.children[0]
        assert isinstance(expr, Tree)
        span = self.span(stmt)
        value = self.expr(expr)
        if isinstance(value, CallValue):
            return self._statement_call(value, span)
        node = self.as_step(value, "workflow")
        if node is None:
            return None
        return ir.Workflow(name="", body=node, span=span, form="bare")

    def _statement_call(self, call: CallValue, span: Span) -> ir.Statement | None:
        name = call.function.name
        args = call.args
        if name in ("start", "explain"):
            body = self.as_step(args["fut" if name == "start" else "input"], "workflow")
            if body is None:
                return None
            if name == "explain":
                return ir.Workflow(name="", body=body, span=span, form="explain")
            label = self.as_text(args.get("label"), call.function.param("label"))
            database = self.as_text(args.get("database"), call.function.param("database"))
            mode = self._transaction_mode(args.get("transaction_mode"))
            return ir.Workflow(
                name="",
                body=body,
                span=span,
                form="start",
                label=label,
                database=database,
                transaction_mode=mode,
            )
        if name == "setvar":
            var = self.as_text(args.get("name"), call.function.param("name"))
            value = self.as_text(args.get("value"), call.function.param("value"))
            if var is None or value is None:
                return None
            if not IDENTIFIER.match(var.value):
                self.sink.add(
                    "DFC210",
                    var.span,
                    f"variable name {var.value!r} is not an identifier, so no {{...}} "
                    "reference can ever use it",
                    hint="Use letters, digits and underscores, not starting with a digit.",
                    severity=Severity.WARNING,
                )
            return ir.SetVar(name=var, value=value, span=span)
        self.sink.add(
            "DFC211",
            call.name_span,
            f"{call.function.qualified_name} manages running instances; it is not part of a "
            "workflow file and is ignored here",
            hint="Call it from psql or your application after `dfc install`.",
        )
        return None

    def _transaction_mode(self, value: Value | None) -> str:
        if value is None:
            return "caller"
        text = self.as_text(value, None)
        if text is None:
            return "caller"
        mode = text.value.strip().lower()
        if mode not in ("caller", "new"):
            self.sink.add(
                "DFC210",
                text.span,
                f"invalid transaction_mode {text.value!r}: expected 'caller' or 'new'",
                hint="'caller' starts the workflow when the calling transaction commits; "
                "'new' starts it even if the caller rolls back.",
            )
            return "caller"
        return mode

    # -- expressions --------------------------------------------------------------------------

    def span(self, tree: Subtree | Token) -> Span:
        # Tokens and the parser's trees carry their line/column bounds (compiler.lalr), so no
        # line lookup is needed; the same subtree's span is asked for several times (operator,
        # node, value), and one Span object serves them all.
        at: Any = tree.meta if type(tree) is Tree else tree
        key = (at.start_pos, at.end_pos)
        span = self._spans.get(key)
        if span is None:
            span = self._spans[key] = Span(
                at.start_pos, at.end_pos, at.line, at.column, at.end_line, at.end_column
            )
        return span

    def expr(self, tree: Subtree | Token) -> Value:
        if isinstance(tree, Token):  # pragma: no cover - every operand is a rule
            return ErrorValue(self.span(tree))
        return self._rules[str(tree.data)](tree)

    def _paren(self, tree: Subtree) -> Value:
        inner = _child(tree, 0)
        while inner.data == "paren":  # ((( x ))) without a frame per level
            inner = _child(inner, 0)
        return self.expr(inner)

    def _literal(self, tree: Subtree) -> Value:
        tokens = [t for t in tree.children if isinstance(t, Token)]
        if len(tokens) == 1:
            return self._string(tokens[0], self.span(tree))
        return self._strings(tokens, self.span(tree))

    def _string(self, token: Token, span: Span) -> Value:
        """One literal: the common case of :meth:`_strings`, without its joining work."""
        try:
            decoded = decode(str(token), token.start_pos or 0)
        except StringError as error:
            self.sink.add(
                "DFC109",
                self.source.span(error.offset, error.offset + error.length),
                error.message,
                hint=error.hint,
            )
            return ErrorValue(span)
        text = ir.Text(value=decoded.value, span=span, breaks=tuple(decoded.breaks))
        return StrValue(span, text, decoded.kind)

    def _strings(self, tokens: list[Token], span: Span) -> Value:
        values: list[str] = []
        breaks: list[tuple[int, int]] = []
        form = ""
        length = 0
        previous: Token | None = None
        for token in tokens:
            start = token.start_pos or 0
            try:
                decoded = decode(str(token), start)
            except StringError as error:
                self.sink.add(
                    "DFC109",
                    self.source.span(error.offset, error.offset + error.length),
                    error.message,
                    hint=error.hint,
                )
                return ErrorValue(span)
            if previous is not None and not self._continues(previous, token, decoded.kind):
                return ErrorValue(span)
            breaks.extend((length + d, o) for d, o in decoded.breaks)
            values.append(decoded.value)
            length += len(decoded.value)
            form = decoded.kind if not form else "concat"
            previous = token
        text = ir.Text(value="".join(values), span=span, breaks=tuple(breaks))
        return StrValue(span, text, form)

    def _continues(self, previous: Token, token: Token, kind: str) -> bool:
        gap_start = previous.end_pos or 0
        gap = self.source.text[gap_start : token.start_pos]
        if kind in ("dollar",) or str(previous).startswith("$"):
            self.sink.add(
                "DFC108",
                self.span(token),
                "a dollar-quoted string cannot be continued by another literal",
                hint="Join the two with ||, or put all the text in one $$...$$ string.",
            )
            return False
        if "\n" not in gap:
            self.sink.add(
                "DFC108",
                self.span(token),
                "two string literals on one line: PostgreSQL joins adjacent literals only "
                "across a line break",
                hint="Join them with ||, put the second on the next line, or add the operator "
                "that is missing between them (~> & | ?> !>).",
            )
            return False
        return True

    def _concat(self, tree: Subtree) -> Value:
        left = self.expr(_child(tree, 0))
        tokens = [t for t in tree.children[1:] if isinstance(t, Token)]
        right = self._strings(
            tokens, self.source.span(tokens[0].start_pos or 0, tokens[-1].end_pos or 0)
        )
        if not isinstance(left, StrValue) or not isinstance(right, StrValue):
            return ErrorValue(self.span(tree))
        shift = len(left.text.value)
        text = ir.Text(
            value=left.text.value + right.text.value,
            span=self.span(tree),
            breaks=left.text.breaks + tuple((d + shift, o) for d, o in right.text.breaks),
        )
        return StrValue(self.span(tree), text, "concat")

    def _number(self, tree: Subtree) -> Value:
        token = _token(tree, 0)
        if token.type == "INTEGER":
            return IntValue(self.span(tree), int(str(token)))
        return NumValue(self.span(tree), float(str(token)))

    def _negative(self, tree: Subtree) -> Value:
        inner = self.expr(_child(tree, 0))
        if isinstance(inner, IntValue):
            return IntValue(self.span(tree), -inner.value)
        if isinstance(inner, NumValue):
            return NumValue(self.span(tree), -inner.value)
        return ErrorValue(self.span(tree))

    def _null(self, tree: Subtree) -> Value:
        return NullValue(self.span(tree))

    def _true(self, tree: Subtree) -> Value:
        return BoolValue(self.span(tree), True)

    def _false(self, tree: Subtree) -> Value:
        return BoolValue(self.span(tree), False)

    def _cast(self, tree: Subtree) -> Value:
        value = self.expr(_child(tree, 0))
        type_tree = _child(tree, 1)
        type_name = " ".join(
            _ident(t) for t in type_tree.children if isinstance(t, Token) and t.type == "IDENT"
        )
        is_array = any(
            isinstance(t, Token) and t.type == "ARRAY_SUFFIX" for t in type_tree.children
        )
        span = self.span(tree)
        if isinstance(value, ErrorValue):
            return value
        if is_array:
            return self._bad_cast(type_tree, f"{type_name}[]")
        if type_name in _JSON_TYPES:
            if isinstance(value, JsonValue):
                return value
            if isinstance(value, StrValue):
                return self._parse_json(value, span)
            if isinstance(value, NullValue):
                return value
        elif type_name in _TEXT_TYPES:
            if isinstance(value, StrValue | NullValue):
                return value
            if isinstance(value, BoolValue | IntValue | NumValue):
                return self._as_text_value(value, span)
        elif type_name in _INT_TYPES:
            converted = self._to_int(value)
            if converted is not None:
                return IntValue(span, converted)
            if isinstance(value, NullValue):
                return value
        elif type_name in _NUMBER_TYPES:
            number = self._to_number(value)
            if number is not None:
                return NumValue(span, number)
        elif type_name in _BOOL_TYPES:
            if isinstance(value, BoolValue):
                return value
            if isinstance(value, StrValue) and value.text.value.strip().lower() in _BOOLEANS:
                return BoolValue(span, _BOOLEANS[value.text.value.strip().lower()])
        else:
            return self._bad_cast(type_tree, type_name)
        self.sink.add(
            "DFC209",
            span,
            f"cannot cast {value.describe()} to {type_name}",
            hint=f"Write a literal that is a valid {type_name}, or remove the cast.",
        )
        return ErrorValue(span)

    def _as_text_value(self, value: BoolValue | IntValue | NumValue, span: Span) -> StrValue:
        """PostgreSQL's text form of a constant: ``true``/``false``, or the number as written."""
        if isinstance(value, BoolValue):
            text = "true" if value.value else "false"
        elif isinstance(value, IntValue):
            text = str(value.value)
        else:
            text = "".join(self.source.text[value.span.start : value.span.end].split())
        return StrValue(span, ir.Text(value=text, span=span, breaks=((0, span.start),)), "quote")

    def _bad_cast(self, type_tree: Subtree, type_name: str) -> Value:
        self.sink.add(
            "DFC209",
            self.span(type_tree),
            f"dfc cannot evaluate a cast to {type_name} at compile time",
            hint="Casts to jsonb, json, text, integer types, numeric and boolean are supported.",
        )
        return ErrorValue(self.span(type_tree))

    def _parse_json(self, value: StrValue, span: Span) -> Value:
        try:
            parsed = json.loads(value.text.value)
        except json.JSONDecodeError as error:
            at = value.text.file_offset(min(error.pos, max(len(value.text.value) - 1, 0)))
            self.sink.add(
                "DFC208",
                self.source.span(at, at + 1),
                f"invalid JSON: {error.msg}",
                hint="The caret marks where the JSON stops making sense: keys and strings "
                "need double quotes, and lists and objects take no trailing comma.",
            )
            return ErrorValue(span)
        return JsonValue(span, parsed)

    def _to_int(self, value: Value) -> int | None:
        if isinstance(value, IntValue):
            return value.value
        if isinstance(value, StrValue):
            try:
                return int(value.text.value.strip())
            except ValueError:
                return None
        return None

    def _to_number(self, value: Value) -> float | None:
        if isinstance(value, IntValue | NumValue):
            return float(value.value)
        if isinstance(value, StrValue):
            try:
                return float(value.text.value.strip())
            except ValueError:
                return None
        return None

    # -- operators ----------------------------------------------------------------------------

    def _steps(self, tree: Subtree, role: str) -> tuple[ir.Node, ...] | None:
        steps = [
            self.as_step(self.expr(child), role)
            for child in tree.children
            if isinstance(child, Tree)
        ]
        if any(step is None for step in steps):
            return None
        return tuple(s for s in steps if s is not None)

    def _seq(self, tree: Subtree) -> Value:
        steps = self._steps(tree, "step of a sequence")
        if steps is None:
            return ErrorValue(self.span(tree))
        return NodeValue(self.span(tree), ir.Seq(span=self.span(tree), steps=steps))

    def _join(self, tree: Subtree) -> Value:
        steps = self._steps(tree, "branch of a join")
        if steps is None:
            return ErrorValue(self.span(tree))
        return NodeValue(self.span(tree), ir.Join(span=self.span(tree), branches=steps))

    def _race(self, tree: Subtree) -> Value:
        steps = self._steps(tree, "branch of a race")
        if steps is None:
            return ErrorValue(self.span(tree))
        return NodeValue(self.span(tree), ir.Race(span=self.span(tree), branches=steps))

    def _if_else(self, tree: Subtree) -> Value:
        steps = self._steps(tree, "part of an if")
        if steps is None:
            return ErrorValue(self.span(tree))
        condition, then, otherwise = steps
        node = ir.If(span=self.span(tree), condition=condition, then=then, otherwise=otherwise)
        return NodeValue(self.span(tree), node)

    def _if_then(self, tree: Subtree) -> Value:
        steps = self._steps(tree, "part of an if")
        if steps is None:
            return ErrorValue(self.span(tree))
        condition, then = steps
        return NodeValue(
            self.span(tree), ir.If(span=self.span(tree), condition=condition, then=then)
        )

    def _loop(self, tree: Subtree) -> Value:
        steps = self._steps(tree, "loop body")
        if steps is None:
            return ErrorValue(self.span(tree))
        return NodeValue(self.span(tree), ir.Loop(span=self.span(tree), body=steps[0]))

    def _undo(self, tree: Subtree) -> Value:
        steps = self._steps(tree, "side of <->")
        if steps is None:
            return ErrorValue(self.span(tree))
        body, undo = steps
        return NodeValue(self.span(tree), ir.Undo(span=self.span(tree), body=body, undo=undo))

    def _bind(self, tree: Subtree) -> Value:
        target = self.as_step(self.expr(_child(tree, 0)), "step to name")
        name_value = self.expr(_child(tree, 1))
        name = self.as_name(name_value)
        if target is None or name is None:
            return ErrorValue(self.span(tree))
        return NodeValue(self.span(tree), self.with_bind(target, name, self.span(tree)))

    def with_bind(self, node: ir.Node, name: ir.Name, span: Span) -> ir.Node:
        if node.bind is not None and node.bind.value != name.value:
            self.sink.add(
                "DFC213",
                name.span,
                f"this step is already named {node.bind.value!r}; {name.value!r} replaces it",
                hint="A step has one result name; the last one given wins.",
            )
        return replace(node, bind=name, span=span)

    # -- calls --------------------------------------------------------------------------------

    def _call(self, tree: Subtree) -> Value:
        name_tree = _child(tree, 0)
        parts = [_ident(t) for t in name_tree.children if isinstance(t, Token)]
        name_span = self.span(name_tree)
        args_tree = tree.children[1]
        arg_trees = list(args_tree.children) if isinstance(args_tree, Tree) else []
        span = self.span(tree)
        if len(parts) == 1 and parts[0] in _JSON_BUILDERS:
            return self._json_builder(parts[0], arg_trees, span)
        function = self._resolve(parts, name_span)
        if function is None:
            for arg in arg_trees:  # still report mistakes inside the arguments
                if isinstance(arg, Tree):
                    self._arg_value(arg)
            return ErrorValue(span)
        args, ok = self._bind_args(function, arg_trees, span)
        if function.category != "node":
            return CallValue(span, function, args, name_span) if ok else ErrorValue(span)
        if any(p.required and p.name not in args for p in function.params):
            return ErrorValue(span)
        # Build even after an argument error: the builder checks the other arguments (it
        # skips values that already failed), so independent mistakes are all reported.
        builder = getattr(self, f"_build_{function.name}")
        node: ir.Node | None = builder(function, args, span)
        if node is None or not ok:
            return ErrorValue(span)
        return NodeValue(span, node)

    def _resolve(self, parts: list[str], span: Span) -> Function | None:
        if len(parts) == 2 and parts[0] == "df":
            function = self.catalogue.get(parts[1])
            if function is not None:
                return function
            candidates = difflib.get_close_matches(parts[1], list(self.catalogue.functions), n=1)
            hint = (
                f"Did you mean df.{candidates[0]}?" if candidates else "See the df.* function list."
            )
            self.sink.add("DFC201", span, f"unknown function df.{parts[1]}", hint=hint)
            return None
        if len(parts) == 1 and parts[0] in self.catalogue.functions:
            self.sink.add(
                "DFC201",
                span,
                f"unknown function {parts[0]}",
                hint=f"Did you mean df.{parts[0]}? The df. schema prefix is required.",
            )
            return None
        name = ".".join(parts)
        self.sink.add(
            "DFC110",
            span,
            f"{name}(...) is evaluated by PostgreSQL at run time; dfc compiles workflows ahead "
            "of time and cannot evaluate it",
            hint="Write the value as a literal, or use {var}/$name references inside SQL.",
        )
        return None

    def _bind_args(
        self, function: Function, arg_trees: Sequence[Subtree | Token | None], span: Span
    ) -> tuple[dict[str, Value], bool]:
        """Bind arguments to parameters: the values bound, and whether binding succeeded."""
        bound: dict[str, Value] = {}
        ok = True
        seen_named = False
        positional = 0
        for arg in arg_trees:
            if not isinstance(arg, Tree):
                continue
            value = self._arg_value(arg)
            if arg.data == "named":
                seen_named = True
                name_token = _token(arg, 0)
                name = _ident(name_token)
                param = function.param(name)
                if param is None:
                    names = [p.name for p in function.params]
                    close = difflib.get_close_matches(name, names, n=1)
                    hint = (
                        f"Did you mean {close[0]}?"
                        if close
                        else (
                            f"{function.qualified_name} takes: {', '.join(names) or 'no arguments'}."
                        )
                    )
                    self.sink.add(
                        "DFC204",
                        self.span(name_token),
                        f"{function.qualified_name} has no parameter named {name!r}",
                        hint=hint,
                    )
                    ok = False
                    continue
                if name in bound:
                    self.sink.add(
                        "DFC205",
                        self.span(arg),
                        f"argument {name!r} is given twice",
                        hint="Give each argument once, by position or by name.",
                    )
                    ok = False
                    continue
                bound[name] = value
                continue
            if seen_named:
                self.sink.add(
                    "DFC214",
                    self.span(arg),
                    "positional argument after a named argument",
                    hint="Put positional arguments first, as PostgreSQL requires.",
                )
                ok = False
                continue
            if positional >= len(function.params):
                self.sink.add(
                    "DFC202",
                    self.span(arg),
                    f"{function.qualified_name} takes at most {len(function.params)} "
                    f"argument{'s' if len(function.params) != 1 else ''}",
                    hint=f"Signature: {function.signature()}",
                )
                ok = False
                positional += 1
                continue
            bound[function.params[positional].name] = value
            positional += 1
        for param in function.params:
            if param.required and param.name not in bound:
                self.sink.add(
                    "DFC203",
                    span,
                    f"{function.qualified_name} needs its {param.name!r} argument",
                    hint=f"Signature: {function.signature()}",
                )
                ok = False
        if any(isinstance(v, ErrorValue) for v in bound.values()):
            ok = False
        return bound, ok

    def _arg_value(self, arg: Subtree) -> Value:
        return self.expr(_child(arg, -1))

    def _json_builder(
        self, name: str, arg_trees: Sequence[Subtree | Token | None], span: Span
    ) -> Value:
        values = [self._arg_value(a) for a in arg_trees if isinstance(a, Tree)]
        plain: list[Any] = []
        for value in values:
            if isinstance(value, StrValue):
                plain.append(value.text.value)
            elif isinstance(value, IntValue | NumValue | BoolValue | JsonValue):
                plain.append(value.value)
            elif isinstance(value, NullValue):
                plain.append(None)
            elif isinstance(value, ErrorValue):
                return value
            else:
                self.sink.add(
                    "DFC206",
                    value.span,
                    f"{name} needs literal values here, not {value.describe()}",
                    hint="dfc builds the JSON at compile time: use strings, numbers, true, "
                    "false, NULL or nested json(b)_build_* calls.",
                )
                return ErrorValue(span)
        if name.endswith("_array"):
            return JsonValue(span, plain)
        if len(plain) % 2:
            self.sink.add(
                "DFC210",
                span,
                f"{name} needs an even number of arguments (key, value, ...)",
                hint="Give a value after every key.",
            )
            return ErrorValue(span)
        return JsonValue(span, {str(plain[i]): plain[i + 1] for i in range(0, len(plain), 2)})

    # -- argument conversions -----------------------------------------------------------------

    def as_step(self, value: Value, role: str) -> ir.Node | None:
        if isinstance(value, NodeValue):
            return value.node
        if isinstance(value, StrValue):
            return ir.Sql(span=value.span, sql=value.text)
        if isinstance(value, ErrorValue):
            return None
        if isinstance(value, CallValue):
            self.sink.add(
                "DFC212",
                value.name_span,
                f"{value.function.qualified_name} cannot be used as a {role}",
                hint=(
                    "Call df.setvar before the workflow, as its own statement."
                    if value.function.name == "setvar"
                    else "A step is a SQL string or a df.* node function."
                ),
            )
            return None
        self.sink.add(
            "DFC206",
            value.span,
            f"expected a workflow step as the {role}, found {value.describe()}",
            hint="A step is a SQL string such as 'SELECT 1', or a df.* call such as df.sleep(5).",
        )
        return None

    def as_text(self, value: Value | None, param: Param | None) -> ir.Text | None:
        if value is None or isinstance(value, NullValue | ErrorValue):
            return None
        if isinstance(value, StrValue):
            return value.text
        what = f"{param.name!r}" if param else "this argument"
        self.sink.add(
            "DFC206",
            value.span,
            f"{what} must be a string, found {value.describe()}",
            hint="Write it in single quotes, e.g. 'text'.",
        )
        return None

    def as_name(self, value: Value) -> ir.Name | None:
        if isinstance(value, ErrorValue):
            return None
        if not isinstance(value, StrValue):
            self.sink.add(
                "DFC207",
                value.span,
                f"a result name must be a string, found {value.describe()}",
                hint="Write the name in quotes, e.g. 'total'.",
            )
            return None
        name = value.text.value
        if not name:
            self.sink.add(
                "DFC207",
                value.span,
                "a result name cannot be empty",
                hint="Name the result with an identifier, e.g. |=> 'total'.",
            )
            return None
        if not IDENTIFIER.match(name):
            suggestion = re.sub(r"\W", "_", name)
            if suggestion[:1].isdigit():
                suggestion = "_" + suggestion
            self.sink.add(
                "DFC207",
                value.span,
                f"result name {name!r} is not an identifier, so $ references cannot use it",
                hint=f"Use letters, digits and underscores, not starting with a digit, e.g. '{suggestion}'.",
            )
            return None
        return ir.Name(value=name, span=value.span)

    def as_int(
        self, value: Value | None, param: Param, function: Function
    ) -> tuple[int, Span] | None:
        if value is None or isinstance(value, ErrorValue):
            return None
        if isinstance(value, NullValue):
            return None
        converted = self._to_int(value)
        if converted is not None and not isinstance(value, NumValue):
            return converted, value.span
        hint = f"Write a whole number, e.g. {function.qualified_name}(..., 60)."
        if isinstance(value, NumValue):
            hint = f"pg_durable declares {param.name} as integer and PostgreSQL has no implicit cast from a decimal; write a whole number."
        self.sink.add(
            "DFC206",
            value.span,
            f"{function.qualified_name}: {param.name!r} must be an integer, found {value.describe()}",
            hint=hint,
        )
        return None

    def as_number(
        self, value: Value | None, param: Param, function: Function
    ) -> tuple[float, Span] | None:
        if value is None or isinstance(value, ErrorValue | NullValue):
            return None
        number = self._to_number(value)
        if number is None:
            self.sink.add(
                "DFC206",
                value.span,
                f"{function.qualified_name}: {param.name!r} must be a number, found {value.describe()}",
                hint="Write a number such as 30 or 2.5.",
            )
            return None
        return number, value.span

    def as_json(self, value: Value | None, param: Param, function: Function) -> ir.Json | None:
        if value is None or isinstance(value, ErrorValue | NullValue):
            return None
        if isinstance(value, StrValue):
            parsed = self._parse_json(value, value.span)
            if not isinstance(parsed, JsonValue):
                return None
            value = parsed
        if isinstance(value, JsonValue):
            return ir.Json(value=value.value, span=value.span)
        self.sink.add(
            "DFC206",
            value.span,
            f"{function.qualified_name}: {param.name!r} must be JSON, found {value.describe()}",
            hint='Write it as a string literal with ::jsonb, e.g. \'{"Accept": "application/json"}\'::jsonb.',
        )
        return None

    # -- node builders (one per df.* node function) ------------------------------------------

    def _build_sql(self, function: Function, args: dict[str, Value], span: Span) -> ir.Node | None:
        text = self.as_text(args["query"], function.params[0])
        if text is None:
            if isinstance(args["query"], NullValue):
                self.sink.add(
                    "DFC206",
                    args["query"].span,
                    "df.sql needs SQL text, not NULL",
                    hint="Write the statement in quotes, e.g. df.sql('SELECT 1').",
                )
            return None
        return ir.Sql(span=span, sql=text)

    def _build_seq(self, function: Function, args: dict[str, Value], span: Span) -> ir.Node | None:
        steps = self._required_steps(function, args)
        return None if steps is None else ir.Seq(span=span, steps=tuple(steps))

    def _build_join(self, function: Function, args: dict[str, Value], span: Span) -> ir.Node | None:
        steps = self._required_steps(function, args)
        return None if steps is None else ir.Join(span=span, branches=tuple(steps))

    _build_join3 = _build_join

    def _build_race(self, function: Function, args: dict[str, Value], span: Span) -> ir.Node | None:
        steps = self._required_steps(function, args)
        return None if steps is None else ir.Race(span=span, branches=tuple(steps))

    def _build_if(self, function: Function, args: dict[str, Value], span: Span) -> ir.Node | None:
        if isinstance(args["else_branch"], NullValue):
            self.sink.add(
                "DFC206",
                args["else_branch"].span,
                "df.if needs an else branch; with NULL, pg_durable's df.if returns NULL",
                hint="For an if without else write: condition ?> then_branch",
            )
            return None
        steps = self._required_steps(function, args)
        if steps is None:
            return None
        condition, then, otherwise = steps
        return ir.If(span=span, condition=condition, then=then, otherwise=otherwise)

    def _build_if_rows(
        self, function: Function, args: dict[str, Value], span: Span
    ) -> ir.Node | None:
        name = self.as_name(args["result_name"])
        then = self.as_step(args["then_branch"], "then branch of df.if_rows")
        otherwise = self.as_step(args["else_branch"], "else branch of df.if_rows")
        if name is None or then is None or otherwise is None:
            return None
        return ir.IfRows(span=span, result_name=name, then=then, otherwise=otherwise)

    def _build_loop(self, function: Function, args: dict[str, Value], span: Span) -> ir.Node | None:
        body = self.as_step(args["body"], "body of df.loop")
        condition_value = args.get("condition")
        condition = None
        if condition_value is not None and not isinstance(condition_value, NullValue):
            condition = self.as_step(condition_value, "condition of df.loop")
            if condition is None:
                return None
        if body is None:
            return None
        return ir.Loop(span=span, body=body, condition=condition)

    def _build_break(
        self, function: Function, args: dict[str, Value], span: Span
    ) -> ir.Node | None:
        value = args.get("value")
        if isinstance(value, JsonValue):
            text = ir.Text(
                value=json.dumps(value.value, separators=(",", ":")),
                span=value.span,
                breaks=((0, value.span.start),),
            )
            return ir.Break(span=span, value=text)
        return ir.Break(span=span, value=self.as_text(value, function.params[0]))

    def _build_sleep(
        self, function: Function, args: dict[str, Value], span: Span
    ) -> ir.Node | None:
        seconds = self.as_int(args["seconds"], function.params[0], function)
        if seconds is None:
            if isinstance(args["seconds"], NullValue):
                self.sink.add(
                    "DFC206",
                    args["seconds"].span,
                    "df.sleep needs a number of seconds, not NULL",
                    hint="Write a whole number of seconds, e.g. df.sleep(60).",
                )
            return None
        return ir.Sleep(span=span, seconds=seconds[0], seconds_span=seconds[1])

    def _build_wait_for_schedule(
        self, function: Function, args: dict[str, Value], span: Span
    ) -> ir.Node | None:
        cron = self.as_text(args["cron_expr"], function.params[0])
        if cron is None:
            return None
        zone = self.as_text(args.get("time_zone"), function.params[1])
        return ir.WaitSchedule(span=span, cron=cron, time_zone=zone)

    def _build_wait_for_signal(
        self, function: Function, args: dict[str, Value], span: Span
    ) -> ir.Node | None:
        name = self.as_text(args["name"], function.params[0])
        if name is None:
            return None
        timeout = self.as_int(args.get("timeout_seconds"), function.params[1], function)
        return ir.WaitSignal(
            span=span,
            signal=name,
            timeout_seconds=timeout[0] if timeout else None,
            timeout_span=timeout[1] if timeout else None,
        )

    def _http_common(self, function: Function, args: dict[str, Value]) -> dict[str, Any]:
        url = self.as_text(args["url"], function.params[0])
        if url is None and isinstance(args["url"], NullValue):
            self.sink.add(
                "DFC206",
                args["url"].span,
                f"{function.qualified_name} needs a URL, not NULL",
                hint="Write the URL in quotes; {var} references are substituted at run time.",
            )
        # The other arguments are checked even without a URL, so all mistakes are reported.
        method = self.as_text(args.get("method"), function.param("method"))
        headers = self.as_json(args.get("headers"), function.params[3], function)
        timeout = self.as_int(args.get("timeout_seconds"), function.params[4], function)
        return {
            "url": url,
            "method": method,
            "headers": headers,
            "timeout_seconds": timeout[0] if timeout else 30,
            "timeout_span": timeout[1] if timeout else None,
        }

    def _build_http(self, function: Function, args: dict[str, Value], span: Span) -> ir.Node | None:
        common = self._http_common(function, args)
        body = args.get("body")
        body_text: ir.Text | None
        if isinstance(body, JsonValue):
            body_text = ir.Text(
                value=json.dumps(body.value, separators=(",", ":")),
                span=body.span,
                breaks=((0, body.span.start),),
            )
        else:
            body_text = self.as_text(body, function.params[2])
        if common["url"] is None:
            return None
        return ir.Http(span=span, body=body_text, **common)

    def _build_http_multipart(
        self, function: Function, args: dict[str, Value], span: Span
    ) -> ir.Node | None:
        common = self._http_common(function, args)
        parts = self.as_json(args.get("parts"), function.params[2], function)
        if common["url"] is None:
            return None
        return ir.HttpMultipart(span=span, parts=parts, **common)

    def _build_as(self, function: Function, args: dict[str, Value], span: Span) -> ir.Node | None:
        target = self.as_step(args["fut"], "step to name")
        name = self.as_name(args["name"])
        if target is None or name is None:
            return None
        return self.with_bind(target, name, span)

    def _build_retry(
        self, function: Function, args: dict[str, Value], span: Span
    ) -> ir.Node | None:
        body = self.as_step(args["e"], "step to retry")
        attempts = self.as_int(args["max_attempts"], function.params[1], function)
        numbers = {
            p.name: self.as_number(args.get(p.name), p, function) for p in function.params[2:]
        }
        if body is None or attempts is None:
            return None
        values = {k: (v[0] if v else float(function.param(k).default)) for k, v in numbers.items()}  # type: ignore[union-attr]
        return ir.Retry(
            span=span,
            body=body,
            max_attempts=attempts[0],
            initial_delay_seconds=values["initial_delay_seconds"],
            backoff_factor=values["backoff_factor"],
            max_delay_seconds=values["max_delay_seconds"],
            args_span=attempts[1],
        )

    def _build_timeout(
        self, function: Function, args: dict[str, Value], span: Span
    ) -> ir.Node | None:
        body = self.as_step(args["e"], "step to limit")
        seconds = self.as_number(args["seconds"], function.params[1], function)
        if body is None or seconds is None:
            return None
        return ir.Timeout(span=span, body=body, seconds=seconds[0], seconds_span=seconds[1])

    def _build_with_undo(
        self, function: Function, args: dict[str, Value], span: Span
    ) -> ir.Node | None:
        steps = self._required_steps(function, args)
        if steps is None:
            return None
        return ir.Undo(span=span, body=steps[0], undo=steps[1])

    def _required_steps(self, function: Function, args: dict[str, Value]) -> list[ir.Node] | None:
        steps = [
            self.as_step(args[p.name], f"{p.name!r} of {function.qualified_name}")
            for p in function.params
            if p.type == "step"
        ]
        if any(s is None for s in steps):
            return None
        return [s for s in steps if s is not None]


_BOOLEANS = {
    "true": True,
    "t": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "f": False,
    "no": False,
    "off": False,
    "0": False,
}

_RULES = {
    "paren",
    "literal",
    "concat",
    "number",
    "negative",
    "null",
    "true",
    "false",
    "cast",
    "seq",
    "join",
    "race",
    "if_else",
    "if_then",
    "loop",
    "undo",
    "bind",
    "call",
}


def _child(tree: Subtree, index: int) -> Subtree:
    child = tree.children[index]
    assert isinstance(child, Tree)
    return child


def _token(tree: Subtree, index: int) -> Token:
    child = tree.children[index]
    assert isinstance(child, Token)
    return child


def _ident(token: Token) -> str:
    text = str(token)
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text.lower()


def _name_workflows(source: SourceFile, statements: list[ir.Statement]) -> list[ir.Statement]:
    """Name each workflow (:func:`compiler.naming.workflow_names`) and number its statement."""
    labels = [
        s.label.value if s.label is not None else None
        for s in statements
        if isinstance(s, ir.Workflow)
    ]
    names = iter(workflow_names(source.name, labels))
    return [
        replace(s, name=next(names), index=index) if isinstance(s, ir.Workflow) else s
        for index, s in enumerate(statements)
    ]
