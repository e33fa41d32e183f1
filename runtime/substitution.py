"""Substitution of ``{var}`` and ``$name`` references into step text (behaviour §6, DSL.md §4).

Two passes, as in pg_durable: first ``{var}`` (raw text of the caller's variables and the
``sys_*`` values), then ``$name`` references to named results. Unlike pg_durable, SQL text is
lexed with PostgreSQL's rules so that a value can never change a statement's structure:

* in plain SQL a value becomes a literal: ``NULL``, ``true``, a bare number (negative numbers in
  parentheses, so ``10-$x`` stays a subtraction), or a quoted string (``E'…'`` with backslashes
  doubled when the value contains one, so the meaning does not depend on
  ``standard_conforming_strings``);
* inside a string literal (``'…$x…'``) the value's text is inserted with the literal's own
  escaping, so quoting a reference yourself works;
* inside a dollar-quoted body the text is inserted as is, and a value that would close the quote
  fails the step;
* comments and quoted identifiers are left alone.

Where the references are is not decided here: :mod:`compiler.refs` is the one scanner, shared
with the checker, so the reference the checker sees is the one substituted. This module decides
what a reference stands for, renders it, and splices it in with the escaping of its context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from compiler.refs import Ref, Scan, scan_sql, scan_text
from runtime.jsonvalues import JSON, dumps

MAX_EXPANSION_ROWS = 10_000
# The scans are cached for the texts that steps repeat; a longer text (a large body, a statement
# with a large ``{var}`` value in it) is scanned afresh rather than kept alive by the cache.
CACHED_TEXT_LENGTH = 8192


class SubstitutionError(Exception):
    """A reference that cannot be substituted; the message is the step's error."""


def _raw_scan(text: str) -> Scan:
    return scan_text(text) if len(text) <= CACHED_TEXT_LENGTH else scan_text.__wrapped__(text)


def _sql_scan(text: str) -> Scan:
    return scan_sql(text) if len(text) <= CACHED_TEXT_LENGTH else scan_sql.__wrapped__(text)


def substitute_vars(text: str, variables: Mapping[str, str]) -> str:
    """Replace each ``{name}`` whose name is a known variable; leave other braces alone."""
    if "{" not in text:
        return text
    out: list[str] = []
    at = 0
    for var in _raw_scan(text).variables:
        value = variables.get(var.name)
        if value is not None:
            out.append(text[at : var.start])
            out.append(value)
            at = var.end
    if not out:
        return text
    out.append(text[at:])
    return "".join(out)


def referenced_names(text: str) -> set[str]:
    """Names that ``$name`` references in ``text`` could mean (a superset)."""
    return {ref.name for ref in _raw_scan(text).refs} if "$" in text else set()


def bound_refs(text: str, results: Mapping[str, JSON]) -> dict[int, Ref]:
    """The references of raw ``text`` that name a result, by the offset of their ``$``.

    For a text with a lexer of its own (a JSON body): it looks up each ``$`` it reaches and
    substitutes only where its own structure allows.
    """
    if "$" not in text or not results:
        return {}
    return {ref.start: ref for ref in _raw_scan(text).refs if ref.name in results}


def _is_rowset(result: JSON) -> bool:
    return isinstance(result, dict) and isinstance(result.get("rows"), list)


def _value(ref: Ref, result: JSON) -> JSON:
    """The value a first-value or field reference stands for; raises on strict misses."""
    nullsafe = ref.nullsafe
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


def _rows_for_star(ref: Ref, result: JSON) -> list[dict[str, JSON]]:
    if not _is_rowset(result):
        raise SubstitutionError(f"${ref.name}.* — invalid result format")
    rows = result["rows"]
    if len(rows) > MAX_EXPANSION_ROWS:
        raise SubstitutionError(
            f"${ref.name}.* — result has {len(rows)} rows, exceeding the maximum of "
            f"{MAX_EXPANSION_ROWS} for row-set expansion. Filter the query or aggregate it."
        )
    return [row if isinstance(row, dict) else {"value": row} for row in rows]


def json_value(ref: Ref, result: JSON) -> JSON:
    """What ``ref`` stands for as a JSON value: the rows of ``$name.*``, otherwise its value."""
    return _rows_for_star(ref, result) if ref.star else _value(ref, result)


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


def _star_sql(ref: Ref, result: JSON) -> str:
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


def _render_code(ref: Ref, result: JSON) -> str:
    if ref.star:
        return _star_sql(ref, result)
    value = _value(ref, result)
    if ref.column is None and not _is_rowset(result):
        return quote_literal(dumps(value))
    return sql_literal(value)


def _render_text(ref: Ref, result: JSON) -> str:
    if ref.star:
        return dumps(_rows_for_star(ref, result))
    return text_of(_value(ref, result))


# --- splicing ------------------------------------------------------------------------------


def substitute_sql(text: str, results: Mapping[str, JSON]) -> str:
    """Substitute ``$name`` references of a SQL statement (see the module docstring)."""
    if "$" not in text or not results:
        return text
    refs = [ref for ref in _sql_scan(text).refs if ref.name in results]
    if not refs:
        return text
    out: list[str] = []
    at = 0
    k = 0
    while k < len(refs):
        ref = refs[k]
        literal = ref.literal
        if ref.context == "dollar" and literal is not None:
            # The whole body is checked once its values are in: a value next to the body's
            # own text, or to another value, can spell the closing delimiter too.
            group = k + 1
            while group < len(refs) and refs[group].literal is literal:
                group += 1
            body = _splice(text, literal.start, literal.end, refs[k:group], results)
            if literal.quote in body:
                raise SubstitutionError(
                    f"a substituted value contains {literal.quote}, which would end the "
                    "dollar-quoted string it is inserted into"
                )
            out.append(text[at : literal.start])
            out.append(body)
            at = literal.end
            k = group
            continue
        out.append(text[at : ref.start])
        if ref.context == "code":
            out.append(_render_code(ref, results[ref.name]))
        else:
            value = _render_text(ref, results[ref.name])
            if literal is not None and literal.extended:
                value = value.replace("\\", "\\\\")
            out.append(value.replace("'", "''"))
        at = ref.end
        k += 1
    out.append(text[at:])
    return "".join(out)


def _splice(
    text: str, start: int, end: int, refs: Sequence[Ref], results: Mapping[str, JSON]
) -> str:
    """``text[start:end]`` with the text of each of ``refs`` (all inside it) in their place."""
    out: list[str] = []
    at = start
    for ref in refs:
        out.append(text[at : ref.start])
        out.append(_render_text(ref, results[ref.name]))
        at = ref.end
    out.append(text[at:end])
    return "".join(out)


def substitute_text(text: str, results: Mapping[str, JSON]) -> str:
    """Substitute ``$name`` references in raw text (break values, HTTP fields): plain text."""
    if "$" not in text or not results:
        return text
    refs = [ref for ref in _raw_scan(text).refs if ref.name in results]
    return _splice(text, 0, len(text), refs, results) if refs else text
