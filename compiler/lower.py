"""Lowering: the parser's reductions to the typed IR, with no parse tree in between.

The LALR driver (:mod:`compiler.lalr`) calls one method per grammar rule (``_<rule>``) with the
rule's kept children, already lowered, and the first and last token it spans; each returns a
:class:`compiler.values.Value` (or a small record for the parts of a call). Calls are bound
against the df.* catalogue (arity, names, types, defaults) here and built by one method per node
function (``_build_<name>``, in :mod:`compiler.builders` with the value conversions). Every problem becomes a diagnostic; lowering goes on after an
error wherever the rest of the statement still makes sense, so independent mistakes are all
reported in one run. A statement's diagnostics are kept apart until it has parsed completely:
a statement with a syntax error reports only that.

:func:`lower` then collects the statements :func:`compiler.parser.parse` lowered and names the
workflows.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from compiler import ir
from compiler.builders import NodeBuilders, is_identifier
from compiler.catalogue import Catalogue, Function, Param
from compiler.catalogue import load as load_catalogue
from compiler.diagnostics import Diagnostic, DiagnosticSink, Severity
from compiler.frozen import evolve, factory
from compiler.grouping import Grouping, Regrouping
from compiler.irwalk import children
from compiler.lalr import Automaton, Bound, Callback, automaton
from compiler.lexer import END, KIND, START, Lexeme
from compiler.naming import workflow_names
from compiler.source import SourceFile, Span
from compiler.strings import StringError, decode, decode_quote
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

if TYPE_CHECKING:
    from compiler.parser import ParseResult

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


def lower(parsed: ParseResult) -> ir.Program:
    """The program of a parsed file; lowering's diagnostics go to ``parsed.diagnostics``."""
    statements: list[ir.Statement] = []
    for statement in parsed.statements:
        parsed.diagnostics.items.extend(statement.diagnostics)
        if statement.lowered is not None:
            statements.append(statement.lowered)
    return ir.Program(
        source=parsed.source, statements=tuple(_name_workflows(parsed.source, statements))
    )


# Lowering makes a span for most rules and a text for every literal: the quickest way.
_new_span = factory(Span)
_new_text = factory(ir.Text)
_new_sql = factory(ir.Sql)


def _span(first: Bound, last: Bound) -> Span:
    """The span from the start of ``first`` to the end of ``last``."""
    return _new_span(first[1], last[2], first[3], first[4], last[5], last[6])


# Lowering once recursed about four frames per nesting level, so the recursion limit decided how
# deeply a workflow could nest; the stages that still recurse (checking, optimizing, emitting,
# dumping) rely on that bound. Deeper than 2,500 levels (ten times pg_durable's limit), even the
# raised limit of a compilation is not enough for them.
_FRAMES_PER_LEVEL = 4
_MAX_LEVELS = 2_500


def _too_deep(node: ir.Node, tokens: int) -> bool:
    """Whether ``node``, of a statement of ``tokens`` tokens, nests deeper than the limit."""
    limit = min(sys.getrecursionlimit() // _FRAMES_PER_LEVEL, _MAX_LEVELS)
    if tokens <= limit:
        # Every level of nesting takes at least one token: a node's children are made from
        # parts of its own tokens, each missing at least one of them (an operator, a
        # parenthesis, a function name); binding a name or parenthesising adds no level.
        return False
    stack = [(node, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children(node))
    return False


class _QualifiedName:
    """A function's name as written: its parts, and its first and last token."""

    __slots__ = ("first", "last", "parts")

    def __init__(self, parts: list[str], first: Bound, last: Bound) -> None:
        self.parts = parts
        self.first = first
        self.last = last

    @property
    def span(self) -> Span:
        """Made when asked for: only a diagnostic or a statement's call needs it."""
        return _span(self.first, self.last)


class _TypeName:
    __slots__ = ("is_array", "name", "span")

    def __init__(self, name: str, is_array: bool, span: Span) -> None:
        self.name = name
        self.is_array = is_array
        self.span = span


class _Arg:
    """One argument of a call: its value, where it is written, and its name if it has one."""

    __slots__ = ("first", "last", "name", "value")

    def __init__(self, value: Value, first: Bound, last: Bound, name: Lexeme | None) -> None:
        self.value = value
        self.first = first
        self.last = last
        self.name = name

    @property
    def span(self) -> Span:
        return _span(self.first, self.last)


# Records built in the hottest rules by setting their slots (see _positional, _literal).
_new_arg = _new_value = object.__new__

# A node builder (an unbound method of :class:`compiler.builders.NodeBuilders`).
_Builder = Callable[[Any, Function, dict[str, Value], Span], ir.Node | None]


class Lowerer(NodeBuilders):
    """The rule callbacks of one file's statements, for :func:`compiler.lalr.drive`.

    Call :meth:`begin` before each statement; afterwards ``diagnostics`` and ``regroupings``
    hold what lowering it found.
    """

    def __init__(self, source: SourceFile, catalogue: Catalogue | None = None) -> None:
        self.source = source
        self.text = source.text
        self.catalogue = catalogue or load_catalogue()
        self.sink = DiagnosticSink()
        self.grouping = Grouping()
        self.tokens = 0  # of the statement being lowered
        self._required_params: dict[str, tuple[Param, ...]] = {}
        # The rule callbacks (methods, called with the lowerer first) and the node builders,
        # found once per class.
        found = _BY_CLASS.get(type(self))
        if found is None:
            found = _BY_CLASS[type(self)] = (_machine(type(self)), _node_builders(type(self)))
        self.machine, self._builders = found

    def _required(self, function: Function) -> tuple[Param, ...]:
        """The parameters of ``function`` without a default, found once per function."""
        found = self._required_params.get(function.name)
        if found is None:
            found = self._required_params[function.name] = tuple(
                p for p in function.params if p.required
            )
        return found

    def begin(self, tokens: int) -> None:
        """Start lowering a statement of ``tokens`` tokens."""
        self.sink = DiagnosticSink()
        self.grouping = Grouping()
        self.tokens = tokens

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.sink.items

    @property
    def regroupings(self) -> list[Regrouping]:
        return self.grouping.found

    # -- statements ---------------------------------------------------------------------------

    def _start(self, kept: list[Any], first: Bound, last: Bound) -> ir.Statement | None:
        statement: ir.Statement | None = kept[0]
        return statement

    def _select_stmt(self, kept: list[Any], first: Bound, last: Bound) -> ir.Statement | None:
        span = _span(first, last)
        statement = self.statement(kept[0], span)
        if isinstance(statement, ir.Workflow) and _too_deep(statement.body, self.tokens):
            self.sink.add(
                "DFC111",
                self.source.span(first[START], first[END]),
                "this statement is nested too deeply to compile",
                hint="Split the workflow into smaller workflows or flatten long chains.",
            )
            return None
        return statement

    _bare_stmt = _select_stmt

    def statement(self, value: Value, span: Span) -> ir.Statement | None:
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
            if not is_identifier(var.value):
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

    def _paren(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        value: Value = kept[0]
        self.grouping.term(value, last[END])
        return value

    def _literal(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        start = first[1]
        span = _new_span(start, last[2], first[3], first[4], last[5], last[6])
        if len(kept) == 1:
            # The commonest rule of all (one per literal): its common case is inlined here.
            text = self.text
            if text[start] == "'":
                body = text[start + 1 : last[2] - 1]
                # A quoted literal: its body is its value (as decode() finds) unless it holds
                # a doubled quote. Its value's slots are set here rather than through a call
                # of __init__.
                made = _new_value(StrValue)
                made.span = span
                if "''" not in body:
                    made.text = _new_text(body, span, ((0, start + 1),))
                else:
                    unquoted, breaks = decode_quote(body, start + 1)
                    made.text = _new_text(unquoted, span, tuple(breaks))
                made.form = "quote"
                return made
            return self._string(kept[0], span)
        return self._strings(kept, span)

    def _string(self, token: Lexeme, span: Span) -> Value:
        """One literal: the common case of :meth:`_strings`, without its joining work."""
        try:
            decoded = decode(self.text[token[START] : token[END]], token[START])
        except StringError as error:
            self.sink.add(
                "DFC109",
                self.source.span(error.offset, error.offset + error.length),
                error.message,
                hint=error.hint,
            )
            return ErrorValue(span)
        text = _new_text(decoded.value, span, tuple(decoded.breaks))
        return StrValue(span, text, decoded.kind)

    def _strings(self, tokens: list[Lexeme], span: Span) -> Value:
        values: list[str] = []
        breaks: list[tuple[int, int]] = []
        form = ""
        length = 0
        previous: Lexeme | None = None
        for token in tokens:
            start = token[START]
            try:
                decoded = decode(self.text[start : token[END]], start)
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

    def _continues(self, previous: Lexeme, token: Lexeme, kind: str) -> bool:
        gap = self.text[previous[END] : token[START]]
        if kind in ("dollar",) or self.text[previous[START]] == "$":
            self.sink.add(
                "DFC108",
                _span(token, token),
                "a dollar-quoted string cannot be continued by another literal",
                hint="Join the two with ||, or put all the text in one $$...$$ string.",
            )
            return False
        if "\n" not in gap:
            self.sink.add(
                "DFC108",
                _span(token, token),
                "two string literals on one line: PostgreSQL joins adjacent literals only "
                "across a line break",
                hint="Join them with ||, put the second on the next line, or add the operator "
                "that is missing between them (~> & | ?> !>).",
            )
            return False
        return True

    def _concat(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        left: Value = kept[0]
        tokens: list[Lexeme] = kept[1:]
        right = self._strings(tokens, self.source.span(tokens[0][START], tokens[-1][END]))
        span = _span(first, last)
        value: Value
        if not isinstance(left, StrValue) or not isinstance(right, StrValue):
            value = ErrorValue(span)
        else:
            shift = len(left.text.value)
            text = ir.Text(
                value=left.text.value + right.text.value,
                span=span,
                breaks=left.text.breaks + tuple((d + shift, o) for d, o in right.text.breaks),
            )
            value = StrValue(span, text, "concat")
        self.grouping.operator("concat", value, kept)
        return value

    def _number(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        token: Lexeme = kept[0]
        written = self.text[token[START] : token[END]]
        if token[KIND] == "INTEGER":
            return IntValue(_span(first, last), int(written))
        return NumValue(_span(first, last), float(written))

    def _negative(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        inner: Value = kept[0]
        if isinstance(inner, IntValue):
            return IntValue(_span(first, last), -inner.value)
        if isinstance(inner, NumValue):
            return NumValue(_span(first, last), -inner.value)
        return ErrorValue(_span(first, last))

    def _null(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        return NullValue(_span(first, last))

    def _true(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        return BoolValue(_span(first, last), True)

    def _false(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        return BoolValue(_span(first, last), False)

    def _type_name(self, kept: list[Any], first: Bound, last: Bound) -> _TypeName:
        tokens = [t for t in kept if t is not None]
        name = " ".join(_ident(self.text, t) for t in tokens if t[KIND] == "IDENT")
        is_array = any(t[KIND] == "ARRAY_SUFFIX" for t in tokens)
        return _TypeName(name, is_array, _span(first, last))

    def _cast(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        value = self._convert(kept[0], kept[1], _span(first, last))
        self.grouping.term(value, last[END])
        return value

    def _convert(self, value: Value, type_tree: _TypeName, span: Span) -> Value:
        type_name = type_tree.name
        if isinstance(value, ErrorValue):
            return value
        if type_tree.is_array:
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

    def _bad_cast(self, type_tree: _TypeName, type_name: str) -> Value:
        self.sink.add(
            "DFC209",
            type_tree.span,
            f"dfc cannot evaluate a cast to {type_name} at compile time",
            hint="Casts to jsonb, json, text, integer types, numeric and boolean are supported.",
        )
        return ErrorValue(type_tree.span)

    # -- operators ----------------------------------------------------------------------------

    def _steps(self, kept: list[Any], role: str) -> tuple[ir.Node, ...] | None:
        """The operands as steps, or None if one is not (each one's problem is reported)."""
        steps: list[ir.Node] = []
        failed = False
        for value in kept:
            # A step already is the commonest operand: taken here without a call.
            step = value.node if type(value) is NodeValue else self.as_step(value, role)
            if step is None:
                failed = True
            else:
                steps.append(step)
        return None if failed else tuple(steps)

    def _operator(self, kind: str, kept: list[Any], span: Span, node: ir.Node | None) -> Value:
        value: Value
        if node is None:
            value = ErrorValue(span)
        else:
            # One per operator: its slots are set here rather than through a call of __init__.
            value = _new_value(NodeValue)
            value.span = span
            value.node = node
        self.grouping.operator(kind, value, kept)
        return value

    def _seq(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        span = _span(first, last)
        steps = self._steps(kept, "step of a sequence")
        node = None if steps is None else ir.Seq(span=span, steps=steps)
        return self._operator("seq", kept, span, node)

    def _join(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        span = _span(first, last)
        steps = self._steps(kept, "branch of a join")
        node = None if steps is None else ir.Join(span=span, branches=steps)
        return self._operator("join", kept, span, node)

    def _race(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        span = _span(first, last)
        steps = self._steps(kept, "branch of a race")
        node = None if steps is None else ir.Race(span=span, branches=steps)
        return self._operator("race", kept, span, node)

    def _if_else(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        span = _span(first, last)
        steps = self._steps(kept, "part of an if")
        node = None
        if steps is not None:
            condition, then, otherwise = steps
            node = ir.If(span=span, condition=condition, then=then, otherwise=otherwise)
        return self._operator("if_else", kept, span, node)

    def _if_then(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        span = _span(first, last)
        steps = self._steps(kept, "part of an if")
        node = None
        if steps is not None:
            condition, then = steps
            node = ir.If(span=span, condition=condition, then=then)
        return self._operator("if_then", kept, span, node)

    def _loop(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        span = _span(first, last)
        steps = self._steps(kept, "loop body")
        node = None if steps is None else ir.Loop(span=span, body=steps[0])
        return self._operator("loop", kept, span, node)

    def _undo(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        span = _span(first, last)
        steps = self._steps(kept, "side of <->")
        node = None
        if steps is not None:
            body, undo = steps
            node = ir.Undo(span=span, body=body, undo=undo)
        return self._operator("undo", kept, span, node)

    def _bind(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        span = _span(first, last)
        value = kept[0]
        if type(value) is StrValue:
            # The commonest case, a named SQL step: made with its name and span at once,
            # which is what naming the step as_step makes would give (it has no name yet).
            name = self.as_name(kept[1])
            sql = None if name is None else _new_sql(span, name, value.text)
            return self._operator("bind", kept, span, sql)
        target = value.node if type(value) is NodeValue else self.as_step(value, "step to name")
        name = self.as_name(kept[1])
        node = None
        if target is not None and name is not None:
            node = self.with_bind(target, name, span)
        return self._operator("bind", kept, span, node)

    # -- calls --------------------------------------------------------------------------------

    def _qualified_name(self, kept: list[Any], first: Bound, last: Bound) -> _QualifiedName:
        parts = []
        source = self.text
        for token in kept:
            text = source[token[1] : token[2]]
            # An unquoted name (the common case, inlined from _ident) folds to lower case.
            parts.append(text.lower() if text[0] != '"' else _ident(source, token))
        # One per call: its slots are set here rather than through a call of __init__.
        name = _new_value(_QualifiedName)
        name.parts = parts
        name.first = first
        name.last = last
        return name

    def _positional(self, kept: list[Any], first: Bound, last: Bound) -> _Arg:
        # One per argument: its slots are set here rather than through a call of __init__.
        arg = _new_arg(_Arg)
        arg.value = kept[0]
        arg.first = first
        arg.last = last
        arg.name = None
        return arg

    def _named(self, kept: list[Any], first: Bound, last: Bound) -> _Arg:
        return _Arg(kept[1], first, last, kept[0])

    def _arguments(self, kept: list[Any], first: Bound, last: Bound) -> list[_Arg]:
        return kept

    def _call(self, kept: list[Any], first: Bound, last: Bound) -> Value:
        name: _QualifiedName = kept[0]
        parts = name.parts
        args_list: list[_Arg] = kept[1] or []
        span = _span(first, last)
        if len(parts) == 1 and parts[0] in _JSON_BUILDERS:
            return self._json_builder(parts[0], args_list, span)
        function = self._resolve(parts, name)
        if function is None:
            return ErrorValue(span)
        args, ok, complete = self._bind_args(function, args_list, span)
        if function.category != "node":
            return CallValue(span, function, args, name.span) if ok else ErrorValue(span)
        if not complete:
            return ErrorValue(span)
        # Build even after an argument error: the builder checks the other arguments (it
        # skips values that already failed), so independent mistakes are all reported.
        node: ir.Node | None = self._builders[function.name](self, function, args, span)
        if node is None or not ok:
            return ErrorValue(span)
        made = _new_value(NodeValue)  # one per call: its slots set directly, as in _operator
        made.span = span
        made.node = node
        return made

    def _resolve(self, parts: list[str], name: _QualifiedName) -> Function | None:
        if len(parts) == 2 and parts[0] == "df":
            function = self.catalogue.get(parts[1])
            if function is not None:
                return function
            span = name.span
            candidates = difflib.get_close_matches(parts[1], list(self.catalogue.functions), n=1)
            hint = (
                f"Did you mean df.{candidates[0]}?" if candidates else "See the df.* function list."
            )
            self.sink.add("DFC201", span, f"unknown function df.{parts[1]}", hint=hint)
            return None
        span = name.span
        if len(parts) == 1 and parts[0] in self.catalogue.functions:
            self.sink.add(
                "DFC201",
                span,
                f"unknown function {parts[0]}",
                hint=f"Did you mean df.{parts[0]}? The df. schema prefix is required.",
            )
            return None
        written = ".".join(parts)
        self.sink.add(
            "DFC110",
            span,
            f"{written}(...) is evaluated by PostgreSQL at run time; dfc compiles workflows ahead "
            "of time and cannot evaluate it",
            hint="Write the value as a literal, or use {var}/$name references inside SQL.",
        )
        return None

    def _bind_args(
        self, function: Function, arg_list: Sequence[_Arg], span: Span
    ) -> tuple[dict[str, Value], bool, bool]:
        """Bind arguments to parameters.

        Returns the values bound, whether binding succeeded, and whether every required
        parameter got a value.
        """
        bound: dict[str, Value] = {}
        ok = True
        seen_named = False
        positional = 0
        params = function.params
        for arg in arg_list:
            value = arg.value
            if type(value) is ErrorValue:
                ok = False  # reported already; the others are still bound and checked
            name_token = arg.name
            if name_token is None and not seen_named and positional < len(params):
                bound[params[positional].name] = value  # the common case, first
                positional += 1
                continue
            if name_token is not None:
                seen_named = True
                name = _ident(self.text, name_token)
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
                        _span(name_token, name_token),
                        f"{function.qualified_name} has no parameter named {name!r}",
                        hint=hint,
                    )
                    ok = False
                    continue
                if name in bound:
                    self.sink.add(
                        "DFC205",
                        arg.span,
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
                    arg.span,
                    "positional argument after a named argument",
                    hint="Put positional arguments first, as PostgreSQL requires.",
                )
                ok = False
                continue
            if positional >= len(function.params):
                self.sink.add(
                    "DFC202",
                    arg.span,
                    f"{function.qualified_name} takes at most {len(function.params)} "
                    f"argument{'s' if len(function.params) != 1 else ''}",
                    hint=f"Signature: {function.signature()}",
                )
                ok = False
                positional += 1
                continue
            bound[function.params[positional].name] = value
            positional += 1
        complete = True
        for param in self._required(function):
            if param.name not in bound:
                self.sink.add(
                    "DFC203",
                    span,
                    f"{function.qualified_name} needs its {param.name!r} argument",
                    hint=f"Signature: {function.signature()}",
                )
                ok = complete = False
        return bound, ok, complete

    def _json_builder(self, name: str, arg_list: Sequence[_Arg], span: Span) -> Value:
        values = [a.value for a in arg_list]
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

_RULES = (
    "start",
    "select_stmt",
    "bare_stmt",
    "paren",
    "literal",
    "concat",
    "number",
    "negative",
    "null",
    "true",
    "false",
    "type_name",
    "cast",
    "seq",
    "join",
    "race",
    "if_else",
    "if_then",
    "loop",
    "undo",
    "bind",
    "qualified_name",
    "positional",
    "named",
    "arguments",
    "call",
)


# The automaton and the node builders of each class of lowerer, made for its first instance.
_BY_CLASS: dict[type[Lowerer], tuple[Automaton, dict[str, _Builder]]] = {}


def _machine(lowerer: type[Lowerer]) -> Automaton:
    """The automaton whose reductions call the rule methods (``_<rule>``) of ``lowerer``."""
    callbacks: dict[str, Callback] = {name: getattr(lowerer, "_" + name) for name in _RULES}
    return automaton(callbacks)


def _node_builders(lowerer: type[Lowerer]) -> dict[str, _Builder]:
    """The node builders of ``lowerer`` (``_build_<function>``), by function name."""
    return {
        name.removeprefix("_build_"): getattr(lowerer, name)
        for name in dir(lowerer)
        if name.startswith("_build_")
    }


def _ident(source: str, token: Lexeme) -> str:
    """The name a name token of the file ``source`` stands for."""
    text = source[token[START] : token[END]]
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
        evolve(s, name=next(names), index=index) if isinstance(s, ir.Workflow) else s
        for index, s in enumerate(statements)
    ]
