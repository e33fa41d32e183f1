"""What lowering turns operands into: conversions of values and the node of each df.* call.

:class:`NodeBuilders` holds the part of lowering that does not depend on the grammar: turning
an operand's :class:`compiler.values.Value` into what a parameter needs (a step, a text, a
result name, an integer, a number, JSON), with a diagnostic when it cannot, and one method per
df.* node function (``_build_<name>``) that makes the function's IR node from its bound
arguments. :class:`compiler.lower.Lowerer` adds the grammar's rules on top.
"""

from __future__ import annotations

import json
import re
from typing import Any

from compiler import ir
from compiler.catalogue import Function, Param
from compiler.diagnostics import DiagnosticSink
from compiler.frozen import evolve, factory
from compiler.source import SourceFile, Span
from compiler.values import (
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


def is_identifier(name: str) -> bool:
    """Whether ``name`` matches :data:`IDENTIFIER`.

    An ASCII Python identifier is exactly that, and two string methods answer several times
    faster than the pattern.
    """
    return name.isascii() and name.isidentifier()


# A SQL step is made for most string operands and a name for every |=>: the quickest way
# (all fields, in order).
_new_sql = factory(ir.Sql)
_new_name = factory(ir.Name)


class NodeBuilders:
    """Conversions and node builders; diagnostics go to ``sink``."""

    source: SourceFile
    sink: DiagnosticSink

    def with_bind(self, node: ir.Node, name: ir.Name, span: Span) -> ir.Node:
        if node.bind is not None and node.bind.value != name.value:
            self.sink.add(
                "DFC213",
                name.span,
                f"this step is already named {node.bind.value!r}; {name.value!r} replaces it",
                hint="A step has one result name; the last one given wins.",
            )
        return evolve(node, bind=name, span=span)

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

    # -- argument conversions -----------------------------------------------------------------

    def as_step(self, value: Value, role: str) -> ir.Node | None:
        if isinstance(value, NodeValue):
            return value.node
        if isinstance(value, StrValue):
            return _new_sql(value.span, None, value.text)
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
        if not is_identifier(name):
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
        return _new_name(name, value.span)

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
