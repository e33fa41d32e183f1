"""The runtime's substitution finds references through the compiler's scanner and still does
exactly what its own scanner did: compared with a copy of that scanner, kept here as the oracle,
on generated SQL-ish texts (quotes, E-strings, comments, dollar quotes, parameters, every
reference form, unbound names) and values that need escaping or could close a dollar quote."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from hypothesis import example, given, settings
from hypothesis import strategies as st

from compiler.refs import Ref
from runtime import substitution as new
from runtime.jsonvalues import JSON, dumps

# --- the oracle: the runtime's own scanner as it was before it used compiler.refs -------------

MAX_EXPANSION_ROWS = 10_000

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
_PLAIN = re.compile(r"[^'\"$\-/]+")


class SubstitutionError(Exception):
    """A reference that cannot be substituted; the message is the step's error."""


def substitute_vars(text: str, variables: Mapping[str, str]) -> str:
    """Replace each ``{name}`` whose name is a known variable; leave other braces alone."""
    if "{" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = variables.get(name)
        return match.group(0) if value is None else value

    return _VAR.sub(replace, text)


def referenced_names(text: str) -> set[str]:
    """Names that ``$name`` references in ``text`` could mean (a superset)."""
    return set(_REF.findall(text)) if "$" in text else set()


@dataclass(frozen=True)
class _Ref:
    name: str
    form: str  # "first", "first?", "field", "field?", "star"
    column: str | None
    end: int

    @property
    def spelled(self) -> str:
        text = f"${self.name}"
        if self.form == "star":
            return text + ".*"
        if self.column is not None:
            text += f".{self.column}"
        return text + ("?" if self.form.endswith("?") else "")


def _parse_ref(text: str, start: int, results: Mapping[str, JSON]) -> _Ref | None:
    match = _REF.match(text, start)
    if match is None or match.group(1) not in results:
        return None
    name, pos = match.group(1), match.end()
    if text.startswith(".*", pos):
        return _Ref(name, "star", None, pos + 2)
    if text.startswith(".", pos):
        column = _IDENT.match(text, pos + 1)
        if column is not None:
            end = column.end()
            if text.startswith("?", end):
                return _Ref(name, "field?", column.group(0), end + 1)
            return _Ref(name, "field", column.group(0), end)
    if text.startswith("?", pos):
        return _Ref(name, "first?", None, pos + 1)
    return _Ref(name, "first", None, pos)


def _is_rowset(result: JSON) -> bool:
    return isinstance(result, dict) and isinstance(result.get("rows"), list)


_MISSING = object()


def _value(ref: _Ref, result: JSON) -> JSON | object:
    """The value a first-value or field reference stands for; raises on strict misses."""
    nullsafe = ref.form.endswith("?")
    if ref.column is None:
        if not _is_rowset(result):
            return result
        rows = result["rows"]
        if not rows:
            if nullsafe:
                return None
            raise SubstitutionError(f"${ref.name} has no rows — query returned zero results")
        row = rows[0]
        value = next(iter(row.values()), None) if isinstance(row, dict) else row
        if value is None and not nullsafe:
            raise SubstitutionError(f"${ref.name} is NULL — first column of first row is NULL")
        return value
    if _is_rowset(result):
        rows = result["rows"]
        if not rows:
            if nullsafe:
                return None
            raise SubstitutionError(f"${ref.name} has no rows — query returned zero results")
        record = rows[0]
    elif isinstance(result, dict):
        record = result
    else:
        raise SubstitutionError(
            f"${ref.name}.{ref.column}: result is neither a row set nor a JSON object"
        )
    if not isinstance(record, dict) or ref.column not in record:
        if nullsafe:
            return None
        available = ", ".join(record) if isinstance(record, dict) else ""
        raise SubstitutionError(
            f"${ref.name}.{ref.column}: result has no field '{ref.column}' (available: {available})"
        )
    value = record[ref.column]
    if value is None and not nullsafe:
        raise SubstitutionError(f"${ref.name}.{ref.column} is NULL")
    return value


def _rows_for_star(ref: _Ref, result: JSON) -> list[dict[str, JSON]]:
    if not _is_rowset(result):
        raise SubstitutionError(f"${ref.name}.* — invalid result format")
    rows = result["rows"]
    if len(rows) > MAX_EXPANSION_ROWS:
        raise SubstitutionError(
            f"${ref.name}.* — result has {len(rows)} rows, exceeding the maximum of "
            f"{MAX_EXPANSION_ROWS} for row-set expansion. Filter the query or aggregate it."
        )
    return [row if isinstance(row, dict) else {"value": row} for row in rows]


# --- rendering -----------------------------------------------------------------------------


def quote_literal(text: str) -> str:
    """A string literal meaning ``text`` whatever ``standard_conforming_strings`` is."""
    if "\\" in text:
        return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: JSON) -> str:
    """``value`` as a SQL literal (pg_durable's ``for_sql`` made injection-proof)."""
    if value is None:
        return "NULL"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | Decimal | float):
        text = dumps(value)
        if text == "null":
            return "NULL"
        return f"({text})" if text.startswith("-") else text
    if isinstance(value, str):
        return quote_literal(value)
    return quote_literal(dumps(value))


def text_of(value: JSON) -> str:
    """The plain text of a value, as inserted into raw contexts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps(value)


def _star_sql(ref: _Ref, result: JSON) -> str:
    rows = _rows_for_star(ref, result)
    alias = quote_ident(ref.name)
    if not rows:
        return f"(SELECT NULL WHERE false) AS {alias}"
    columns = list(rows[0])
    tuples = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            literal = sql_literal(value)
            if isinstance(value, str | dict | list):
                literal += "::text"
            cells.append(literal)
        tuples.append("(" + ", ".join(cells) + ")")
    names = ", ".join(quote_ident(column) for column in columns)
    return f"(VALUES {', '.join(tuples)}) AS {alias}({names})"


def _render_code(ref: _Ref, result: JSON) -> str:
    if ref.form == "star":
        return _star_sql(ref, result)
    value = _value(ref, result)
    if ref.column is None and not _is_rowset(result):
        return quote_literal(dumps(value))
    return sql_literal(value)


def _render_text(ref: _Ref, result: JSON) -> str:
    if ref.form == "star":
        return dumps(_rows_for_star(ref, result))
    return text_of(_value(ref, result))


# --- the SQL scanner -----------------------------------------------------------------------


def _is_ident_char(char: str) -> bool:
    return char.isalnum() or char in "_$" or ord(char) >= 0x80


def _replace_refs(body: str, results: Mapping[str, JSON], escape: str | None) -> str:
    """Substitute references inside a literal body, escaping for that literal kind."""
    if "$" not in body:
        return body
    out: list[str] = []
    i = 0
    while True:
        j = body.find("$", i)
        if j < 0:
            out.append(body[i:])
            break
        out.append(body[i:j])
        ref = _parse_ref(body, j, results)
        if ref is None:
            out.append("$")
            i = j + 1
            continue
        text = _render_text(ref, results[ref.name])
        if escape == "standard":
            text = text.replace("'", "''")
        elif escape == "extended":
            text = text.replace("\\", "\\\\").replace("'", "''")
        out.append(text)
        i = ref.end
    return "".join(out)


def _string_end(text: str, start: int, extended: bool) -> int:
    """Index just after the closing quote of the literal whose opening quote is at ``start``."""
    i = start + 1
    n = len(text)
    while i < n:
        char = text[i]
        if extended and char == "\\":
            i += 2
            continue
        if char == "'":
            if i + 1 < n and text[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _comment_end(text: str, start: int) -> int:
    depth = 0
    i = start
    n = len(text)
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def substitute_sql(text: str, results: Mapping[str, JSON]) -> str:
    """Substitute ``$name`` references of a SQL statement (see the module docstring)."""
    if "$" not in text or not results:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        plain = _PLAIN.match(text, i)
        if plain is not None:
            out.append(plain.group(0))
            i = plain.end()
            continue
        char = text[i]
        if char == "'":
            prefix = text[i - 1] if i > 0 else ""
            before = text[i - 2] if i > 1 else ""
            extended = prefix in "eE" and prefix != "" and not (before and _is_ident_char(before))
            end = _string_end(text, i, extended)
            closed = end <= n and text[end - 1] == "'" and end - 1 > i
            body = text[i + 1 : end - 1] if closed else text[i + 1 :]
            escaped = _replace_refs(body, results, "extended" if extended else "standard")
            out.append("'" + escaped + ("'" if closed else ""))
            i = end
        elif char == '"':
            end = text.find('"', i + 1)
            while end >= 0 and text.startswith('""', end):
                end = text.find('"', end + 2)
            end = n if end < 0 else end + 1
            out.append(text[i:end])
            i = end
        elif char == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(text[i:end])
            i = end
        elif char == "/" and text.startswith("/*", i):
            end = _comment_end(text, i)
            out.append(text[i:end])
            i = end
        elif char == "$":
            i = _dollar(text, i, results, out)
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _dollar(text: str, i: int, results: Mapping[str, JSON], out: list[str]) -> int:
    if i > 0 and _is_ident_char(text[i - 1]):
        out.append("$")
        return i + 1
    tag = _DOLLAR_TAG.match(text, i)
    if tag is not None:
        delimiter = tag.group(0)
        close = text.find(delimiter, tag.end())
        body_end = len(text) if close < 0 else close
        body = _replace_refs(text[tag.end() : body_end], results, None)
        if delimiter in body:
            raise SubstitutionError(
                f"a substituted value contains {delimiter}, which would end the dollar-quoted "
                "string it is inserted into"
            )
        out.append(delimiter + body + (delimiter if close >= 0 else ""))
        return len(text) if close < 0 else close + len(delimiter)
    if i + 1 < len(text) and text[i + 1].isdigit():
        out.append("$")
        return i + 1
    ref = _parse_ref(text, i, results)
    if ref is None:
        out.append("$")
        return i + 1
    out.append(_render_code(ref, results[ref.name]))
    return ref.end


def substitute_text(text: str, results: Mapping[str, JSON]) -> str:
    """Substitute ``$name`` references in raw text (break values, HTTP fields): plain text."""
    if "$" not in text or not results:
        return text
    return _replace_refs(text, results, None)


_R = TypeVar("_R", _Ref, Ref)

# --- the comparison --------------------------------------------------------------------------

_FRAGMENTS = [
    "SELECT ", " ", "x", "1", "é", ".", "?", "*", ",", "(", ")", "\n", "-", "/",
    "'", "''", "E'", "e'", "xe'", "\\", "\\'", '"', '""',
    "--", "/*", "*/",
    "$", "$$", "$q$", "$Q$", "$a$", "$é$",
    "$1", "$12",
    "$a", "$b", "$ab", "$zz", "$a.x", "$a.y", "$a.x?", "$a?", "$a.*", "$b.*", "$zz.x", "$a.", "$a.1",
    "{v}",
]

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([Decimal("-1.5"), Decimal("2.25"), 0.5, -0.5]),
    st.text(alphabet="a'\\$q\"x ", max_size=6),
    st.sampled_from(["$$", "$q$", "q$", "$", "it's", "c:\\d", "$a$"]),
)
_ROW = st.fixed_dictionaries({}, optional={"x": _SCALARS, "y": _SCALARS})
_RESULT = st.one_of(
    _SCALARS,
    st.builds(lambda rows: {"rows": rows, "row_count": len(rows)}, st.lists(_ROW, max_size=3)),
    st.builds(lambda rows: {"rows": rows, "row_count": len(rows)}, st.lists(_SCALARS, max_size=2)),
    st.dictionaries(st.sampled_from(["x", "y"]), _SCALARS, max_size=2),
    st.lists(_SCALARS, max_size=2),
)
_RESULTS = st.dictionaries(st.sampled_from(["a", "b", "ab", "q"]), _RESULT, max_size=4)
_TEXTS = st.lists(st.sampled_from(_FRAGMENTS), max_size=14).map("".join)


def _outcome(function: Callable[[], str]) -> tuple[str, str]:
    try:
        return ("ok", function())
    except (SubstitutionError, new.SubstitutionError) as exc:
        return ("error", str(exc))


@settings(max_examples=3000, deadline=None)
@given(_TEXTS, _RESULTS)
@example("DO $$ $a $$", {"a": "$"})
@example("DO $q$ q$a $q$", {"a": "$"})
@example("DO $$ $a$b $$", {"a": "$", "b": "$x"})
@example("DO $q$ $$a $q$", {"a": "q$"})
@example("SELECT E'\\\\$a' || '$a' || $a", {"a": "it's c:\\d"})
@example("SELECT $zz, $a.x?, 10-$b", {"a": {"rows": []}, "b": -5})
def test_substitute_sql_agrees_with_the_oracle(text: str, results: dict[str, JSON]) -> None:
    assert _outcome(lambda: new.substitute_sql(text, results)) == _outcome(
        lambda: substitute_sql(text, results)
    )


@settings(max_examples=200, deadline=None)
@given(_TEXTS, _TEXTS, _RESULTS)
def test_long_texts_agree_with_the_oracle(head: str, tail: str, results: dict[str, JSON]) -> None:
    """Texts too long for the scan cache are scanned afresh, with the same outcome."""
    text = head + " " * new.CACHED_TEXT_LENGTH + tail
    assert _outcome(lambda: new.substitute_sql(text, results)) == _outcome(
        lambda: substitute_sql(text, results)
    )
    assert _outcome(lambda: new.substitute_text(text, results)) == _outcome(
        lambda: substitute_text(text, results)
    )
    assert new.referenced_names(text) == referenced_names(text)
    assert new.substitute_vars(text, {"v": "$a"}) == substitute_vars(text, {"v": "$a"})


@settings(max_examples=2000, deadline=None)
@given(_TEXTS, _RESULTS)
def test_substitute_text_agrees_with_the_oracle(text: str, results: dict[str, JSON]) -> None:
    assert _outcome(lambda: new.substitute_text(text, results)) == _outcome(
        lambda: substitute_text(text, results)
    )


@settings(max_examples=1000, deadline=None)
@given(_TEXTS, st.dictionaries(st.sampled_from(["v", "w"]), st.text(max_size=3), max_size=2))
def test_names_and_variables_agree_with_the_oracle(text: str, variables: dict[str, str]) -> None:
    assert new.referenced_names(text) == referenced_names(text)
    assert new.substitute_vars(text, variables) == substitute_vars(text, variables)


@settings(max_examples=1000, deadline=None)
@given(_TEXTS, _RESULTS)
def test_bound_refs_are_the_references_the_oracle_reads(
    text: str, results: dict[str, JSON]
) -> None:
    """JSON bodies look a reference up at each ``$`` their lexer reaches, wherever it is."""
    bound = new.bound_refs(text, results)
    for i, char in enumerate(text):
        if char != "$":
            continue
        expected = _parse_ref(text, i, results)
        found = bound.get(i)
        if expected is None:
            assert found is None
            continue
        assert found is not None
        assert (found.name, found.column, found.star, found.end) == (
            expected.name, expected.column, expected.form == "star", expected.end
        )
        assert found.nullsafe == expected.form.endswith("?")
        assert _json_outcome(new.json_value, found, results) == _json_outcome(
            _oracle_json_value, expected, results
        )


def _oracle_json_value(ref: _Ref, result: JSON) -> JSON:
    """What the JSON body's substitution took for a reference."""
    if ref.form == "star":
        return _rows_for_star(ref, result)  # type: ignore[return-value]
    return _value(ref, result)  # type: ignore[return-value]


def _json_outcome(
    value_of: Callable[[_R, JSON], JSON], ref: _R, results: Mapping[str, JSON]
) -> tuple[str, str]:
    return _outcome(lambda: dumps(value_of(ref, results[ref.name])))
