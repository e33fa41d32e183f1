"""Property tests: generated programs compile to the IR they were generated from, formatting
keeps the IR and is idempotent, and no input text makes the front end raise.

Programs are drawn from a recursive strategy over the IR's shapes (SQL steps in every string
form, n-ary operators, ifs with and without else, loops, waits, breaks, the dfc extensions,
result names), rendered with only the parentheses that precedence requires, and with random
whitespace and comments between tokens. The expected IR is built alongside the text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.api import check_text, front_end, ir_to_json
from compiler.formatter import format_text

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Precedence levels, loosest to tightest (DSL.md §2); an operand needs parentheses when
# its own level is not tighter than the place it stands in.
IF, SEQ, RACE, JOIN, BIND, UNDO, ATOM = 2, 3, 4, 5, 6, 7, 8


@dataclass(frozen=True)
class Gen:
    """A generated expression: its text, its precedence level and the IR it must lower to."""

    text: str
    level: int
    ir: dict[str, Any]


def strip_spans(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_spans(v) for k, v in value.items() if k != "span"}
    if isinstance(value, list):
        return [strip_spans(v) for v in value]
    return value


# -- separators ---------------------------------------------------------------------------

separators = st.sampled_from([" ", " ", "  ", "\n", "\n    ", " -- note\n", " /* c */ ", "\t"])


def sep(draw: st.DrawFn) -> str:
    return draw(separators)


# -- string literals in every form ----------------------------------------------------------

sql_text = st.lists(
    st.sampled_from([*"SELECT 1,ab_$.*()'\\\n\t", "é", "漢", "😀", "{x}", "$r.c", "''"]),
    max_size=12,
).map("".join)


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def escape(value: str) -> str:
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) > 0xFFFF:
            out.append(f"\\U{ord(ch):08X}")
        elif ord(ch) > 127:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "E'" + "".join(out) + "'"


def unicode(value: str) -> str:
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("''")
        elif ord(ch) > 0xFFFF:
            out.append(f"\\+{ord(ch):06X}")
        elif ord(ch) > 127:
            out.append(f"\\{ord(ch):04X}")
        else:
            out.append(ch)
    return "U&'" + "".join(out) + "'"


def dollar(value: str) -> str:
    tag = ""
    if "$$" in value or value.endswith("$"):
        tag = "t"
        while f"${tag}$" in value:
            tag += "t"
    return f"${tag}${value}${tag}$"


@st.composite
def literal(draw: st.DrawFn) -> tuple[str, str]:
    """A string literal (maybe split into pieces joined by || or a line break) and its value."""
    value = draw(sql_text)
    pieces = [value]
    if len(value) > 2 and draw(st.booleans()):
        cut = draw(st.integers(1, len(value) - 1))
        pieces = [value[:cut], value[cut:]]
    forms = [draw(st.sampled_from([quote, escape, unicode, dollar])) for _ in pieces]
    text = forms[0](pieces[0])
    for form, piece in zip(forms[1:], pieces[1:], strict=True):
        if form is dollar or forms[0] is dollar or text.startswith("$") or draw(st.booleans()):
            text += " || " + form(piece)
        else:
            # Continuation: a line break (comments allowed) between the two literals.
            text += draw(st.sampled_from(["\n", "\n  ", " -- c\n", "\n/* c */ "])) + form(piece)
    return text, value


# -- expressions ------------------------------------------------------------------------------


def wrap(child: Gen, above: int) -> str:
    """The child's text, parenthesised unless it binds tighter than ``above``."""
    return child.text if child.level > above else f"({child.text})"


@st.composite
def sql_step(draw: st.DrawFn) -> Gen:
    text, value = draw(literal())
    node = {"kind": "sql", "sql": value}
    if draw(st.integers(0, 5)) == 0:
        return Gen(f"df.sql({text})", ATOM, node)
    return Gen(text, ATOM, node)


names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)


@st.composite
def leaf(draw: st.DrawFn) -> Gen:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        seconds = draw(st.integers(0, 10**6))
        return Gen(f"df.sleep({seconds})", ATOM, {"kind": "sleep", "seconds": seconds})
    if choice == 1:
        name = draw(names)
        timeout = draw(st.none() | st.integers(1, 10**5))
        args = f"'{name}'" if timeout is None else f"'{name}', {timeout}"
        node = {"kind": "wait_signal", "signal": name, "timeout_seconds": timeout}
        return Gen(f"df.wait_for_signal({args})", ATOM, node)
    if choice == 2:
        value = draw(st.none() | st.sampled_from(["done", '{"ok": true}', "$r.c"]))
        args = "" if value is None else quote(value)
        return Gen(f"df.break({args})", ATOM, {"kind": "break", "value": value})
    return draw(sql_step())


def nary(kind: str, key: str, op: str, level: int) -> Callable[[st.DrawFn, list[Gen]], Gen]:
    def build(draw: st.DrawFn, children: list[Gen]) -> Gen:
        parts = [wrap(c, level) for c in children]
        text = parts[0]
        for part in parts[1:]:
            text += f"{sep(draw)}{op}{sep(draw)}{part}"
        return Gen(text, level, {"kind": kind, key: [c.ir for c in children]})

    return build


@st.composite
def compound(draw: st.DrawFn, children: st.SearchStrategy[Gen]) -> Gen:
    choice = draw(st.integers(0, 11))
    if choice <= 2:
        kind, key, op, level = [
            ("seq", "steps", "~>", SEQ),
            ("join", "branches", "&", JOIN),
            ("race", "branches", "|", RACE),
        ][choice]
        parts = draw(st.lists(children, min_size=2, max_size=4))
        return nary(kind, key, op, level)(draw, parts)
    if choice == 3:  # if, with or without else
        condition, then = draw(children), draw(children)
        otherwise = draw(st.none() | children)
        text = f"{wrap(condition, IF)}{sep(draw)}?>{sep(draw)}{wrap(then, IF)}"
        if otherwise is not None:
            # !> is right-associative: an if may stand unparenthesised in the else branch,
            # but only one that has an else itself.
            tail = otherwise.ir["kind"] == "if" and otherwise.ir["otherwise"] is not None
            text += f"{sep(draw)}!>{sep(draw)}" + (
                otherwise.text if tail and otherwise.level == IF else wrap(otherwise, IF)
            )
        node = {
            "kind": "if",
            "condition": condition.ir,
            "then": then.ir,
            "otherwise": otherwise.ir if otherwise else None,
        }
        return Gen(text, IF, node)
    if choice == 4:  # loops: prefix operator or function, with or without condition
        body = draw(children)
        condition = draw(st.none() | children)
        node = {"kind": "loop", "body": body.ir, "condition": condition.ir if condition else None}
        if condition is None and draw(st.booleans()):
            return Gen(f"(@>{sep(draw)}{body.text})", ATOM, node)
        args = body.text if condition is None else f"{body.text}, {condition.text}"
        return Gen(f"df.loop({args})", ATOM, node)
    if choice == 5:
        body, undo = draw(children), draw(children)
        node = {"kind": "undo", "body": body.ir, "undo": undo.ir}
        if draw(st.booleans()):
            return Gen(f"df.with_undo({body.text}, {undo.text})", ATOM, node)
        text = f"{wrap(body, UNDO - 1)}{sep(draw)}<->{sep(draw)}{wrap(undo, UNDO)}"
        return Gen(text, UNDO, node)
    if choice == 6:
        body = draw(children)
        attempts = draw(st.integers(1, 10))
        node = {
            "kind": "retry",
            "body": body.ir,
            "max_attempts": attempts,
            "initial_delay_seconds": 1.0,
            "backoff_factor": 2.0,
            "max_delay_seconds": 300.0,
        }
        return Gen(f"df.retry({body.text}, {attempts})", ATOM, node)
    if choice == 7:
        body = draw(children)
        seconds = draw(st.integers(1, 3600))
        node = {"kind": "timeout", "body": body.ir, "seconds": float(seconds)}
        return Gen(f"df.timeout({body.text}, seconds => {seconds})", ATOM, node)
    if choice == 8:  # function forms of the binary operators
        a, b = draw(children), draw(children)
        name, kind, key = draw(
            st.sampled_from(
                [
                    ("seq", "seq", "steps"),
                    ("join", "join", "branches"),
                    ("race", "race", "branches"),
                ]
            )
        )
        return Gen(f"df.{name}({a.text}, {b.text})", ATOM, {"kind": kind, key: [a.ir, b.ir]})
    if choice == 9:
        a, b, c = draw(children), draw(children), draw(children)
        if draw(st.booleans()):
            node = {"kind": "join", "branches": [a.ir, b.ir, c.ir]}
            return Gen(f"df.join3({a.text}, {b.text}, {c.text})", ATOM, node)
        node = {"kind": "if", "condition": a.ir, "then": b.ir, "otherwise": c.ir}
        return Gen(f"df.if({a.text}, {b.text}, {c.text})", ATOM, node)
    # choice 10-11: name the result of a step
    target = draw(children)
    if "bind" in target.ir:
        return target
    name = draw(names)
    node = {**target.ir, "bind": name}
    if draw(st.booleans()):
        return Gen(f"df.as({target.text}, '{name}')", ATOM, node)
    return Gen(f"{wrap(target, UNDO - 1)}{sep(draw)}|=>{sep(draw)}'{name}'", BIND, node)


expressions = st.recursive(leaf(), lambda children: compound(children), max_leaves=12)


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """A file of one to three statements and the expected body of each workflow."""
    statements = []
    bodies = []
    for index in range(draw(st.integers(1, 3))):
        expression = draw(expressions)
        form = draw(st.sampled_from(["bare", "start", "label", "named", "explain"]))
        text = {
            "bare": expression.text,
            "start": f"SELECT df.start({expression.text})",
            "label": f"SELECT df.start({expression.text}, 'w{index}')",
            "named": f"select df.start({expression.text}, database => 'db', transaction_mode := 'new')",
            "explain": f"SELECT df.explain({expression.text})",
        }[form]
        statements.append(text)
        bodies.append(expression.ir)
    return ";\n".join(statements) + draw(st.sampled_from(["", ";", ";\n"])), bodies


def bodies_of(text: str) -> list[Any]:
    result = front_end(text, "gen.dsql")
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, (text, errors)
    return [strip_spans(s["body"]) for s in ir_to_json(result.program)]


def without_spans(text: str) -> Any:
    return strip_spans(ir_to_json(front_end(text, "gen.dsql").program))


@SETTINGS
@given(programs())
def test_generated_programs_lower_to_the_generated_ir(program: tuple[str, list[Any]]) -> None:
    text, expected = program
    assert bodies_of(text) == expected


@SETTINGS
@given(programs())
def test_formatting_keeps_the_ir_and_is_idempotent(program: tuple[str, list[Any]]) -> None:
    text, _ = program
    formatted = format_text(text, "gen.dsql")
    assert without_spans(formatted) == without_spans(text), formatted
    assert format_text(formatted, "gen.dsql") == formatted


# -- anything at all: diagnostics, never exceptions ------------------------------------------

TOKENS = [
    "'a'",
    "'SELECT 1'",
    "E'\\n'",
    "E'\\u12'",
    "U&'\\0041'",
    "$$x$$",
    "$t$y$t$",
    "'open",
    "$$",
    "~>",
    "|=>",
    "&",
    "|",
    "?>",
    "!>",
    "@>",
    "<->",
    "||",
    "::",
    "jsonb",
    "text",
    "int",
    "[]",
    "(",
    ")",
    ",",
    ";",
    "=>",
    ":=",
    ".",
    "-",
    "df",
    "df.sleep",
    "df.http",
    "df.start",
    "df.if",
    "df.loop",
    "df.break",
    "df.as",
    "df.nope",
    "SELECT",
    "NULL",
    "TRUE",
    "x",
    "AND",
    "1",
    "1.5",
    "-2",
    "1e3",
    "'{\"a\": 1}'",
    "'{bad'",
    "/*",
    "*/",
    "--",
    "\n",
    " ",
    ":v",
    "#",
    "\\",
    '"Q"',
    "jsonb_build_object",
    "'my-name'",
]


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.sampled_from(["", " ", "\n"]))
def test_token_soup_only_produces_diagnostics(tokens: list[str], joiner: str) -> None:
    text = joiner.join(tokens)
    result = front_end(text, "soup.dsql")
    for diagnostic in result.diagnostics:
        assert diagnostic.message
        assert 0 <= diagnostic.span.start <= diagnostic.span.end <= len(text)
    check_text(text, "soup.dsql")
    format_text(text, "soup.dsql")


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text_only_produces_diagnostics(text: str) -> None:
    result = front_end(text, "any.dsql")
    for diagnostic in result.diagnostics:
        assert 0 <= diagnostic.span.start <= diagnostic.span.end <= len(text)
    check_text(text, "any.dsql")
