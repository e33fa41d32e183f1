"""What the real PostgreSQL parser (pglast) says about one SQL step.

:func:`analyse` takes a step's SQL with its references already replaced by same-length
placeholders (:func:`compiler.refs.scan_sql`) and returns a :class:`Shape`: the syntax error and
its offset, how many statements the text holds, whether the statement can run inside a
transaction block, the output column names where the SQL makes them knowable, and, for a
constant condition such as ``SELECT 1 > 0``, its truth value. Everything is read from pglast's
JSON parse tree (much faster than its Python node objects); results are cached per text, since
the same statement shapes repeat in real files.

Decoding that JSON tree was most of the cost, so only as much of it is decoded as the answer
needs. For the common single ``SELECT``/``INSERT``/``UPDATE``/``DELETE``/``MERGE`` the statement
kind is read from the text's opening and only the select list or ``RETURNING`` clause is
decoded (:func:`_quick_shape`); everything else decodes the whole tree. The truth value of a
constant condition is worked out only when asked for (:attr:`Shape.constant`): only conditions
without references ever ask.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pglast import parser as pg

from compiler.frozen import quick_init

JsonNode = dict[str, Any]


@quick_init  # without slots: one dictionary update builds it, quicker than ten slot stores
@dataclass(frozen=True)
class Shape:
    error: str | None = None
    error_offset: int = 0  # offset of the syntax error in the text
    statements: int = 1
    second_offset: int | None = None  # where the second statement starts
    kind: str | None = None  # pglast node name of the (first) statement, e.g. "SelectStmt"
    transactional: bool = True
    not_transactional_because: str | None = None
    columns: tuple[str, ...] | None = None  # None = unknown; () = returns no rows
    transaction_control: bool = False
    # pglast's JSON tree of a lone SELECT, kept to work out ``constant`` if that is asked for.
    select_tree: str | None = field(default=None, compare=False, repr=False)

    @property
    def constant(self) -> bool | None:
        """The truthiness of a constant condition (``SELECT 1 > 0``), else None."""
        if self.select_tree is None:
            return None
        return constant_of(self.select_tree)


@lru_cache(maxsize=16384)
def analyse(masked: str) -> Shape:
    """The shape of one step's SQL (references masked); never raises."""
    try:
        text = pg.parse_sql_json(masked)
    except pg.ParseError as error:
        message = str(error.args[0]) if error.args else "syntax error"
        offset = error.args[1] if len(error.args) > 1 and error.args[1] is not None else None
        if offset is None:
            offset = len(masked.rstrip())
        return Shape(error=message, error_offset=int(offset), statements=0)
    quick = _quick_shape(text)
    if quick is not None:
        return quick
    tree = json.loads(text)
    stmts: list[JsonNode] = tree.get("stmts") or []
    if not stmts:
        return Shape(statements=0)
    if len(stmts) > 1:
        location = stmts[1].get("stmt_location", 0)
        return Shape(statements=len(stmts), second_offset=_char_offset(masked, location), kind=None)
    node = stmts[0]["stmt"]
    kind, body = next(iter(node.items()))
    reason = _non_transactional(kind, body)
    return Shape(
        kind=kind,
        transactional=reason is None,
        not_transactional_because=reason,
        columns=_columns(kind, body),
        transaction_control=kind == "TransactionStmt",
        select_tree=text if kind == "SelectStmt" else None,
    )


# The opening of the JSON tree of one or more statements, naming the first one's kind.
_OPENING = re.compile(r'\{"version":\d+,"stmts":\[\{"stmt":\{"(\w+)":\{')
_DECODER = json.JSONDecoder()
_DML_KINDS = frozenset({"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"})
_DML_NODES = tuple(f'{{"{kind}":' for kind in sorted(_DML_KINDS))


def _quick_shape(text: str) -> Shape | None:
    """The shape of a lone SELECT or data-changing statement, decoding only its output list.

    None where the whole tree is needed. The substring tests are exact: a quote inside a JSON
    string is escaped, so ``{"stmt":`` or ``"returningClause":`` can only be keys; only a
    statement node has a ``stmt`` key, and only a data-changing statement has a RETURNING clause.
    """
    opening = _OPENING.match(text)
    if opening is None or text.find('{"stmt":', opening.end()) != -1:
        return None  # not a statement, or several
    kind = opening.group(1)
    if kind == "SelectStmt":
        # The select list is the first key only of a plain SELECT (no DISTINCT or INTO; a set
        # operation or VALUES has none): its columns are the select list's.
        if not text.startswith('"targetList":', opening.end()):
            return None
        columns = (
            _plain_target_names(text, opening.end() + len('"targetList":'))
            # Without another statement node or XML expression, every ResTarget in the tree is
            # an entry of the select list.
            if text.count(_STATEMENT_NODE) == 1 and '"XmlExpr"' not in text
            else _UNDECIDED
        )
        if columns is _UNDECIDED:
            targets, _ = _DECODER.raw_decode(text, opening.end() + len('"targetList":'))
            columns = _target_names(targets)
        return Shape(kind=kind, columns=columns, select_tree=text)
    if kind not in _DML_KINDS or '"returningList":' in text:
        return None
    # With one data-changing statement in the tree, a RETURNING clause in it is the top one's.
    if sum(text.count(node) for node in _DML_NODES) != 1:
        return None
    at = text.find('"returningClause":')
    if at == -1:
        return Shape(kind=kind, columns=())
    at += len('"returningClause":')
    if (
        text.startswith('{"exprs":', at)
        # Only a WITH clause comes after the RETURNING clause; without a statement node or an
        # XML expression there, every ResTarget from here on is an entry of the clause.
        and text.find(_STATEMENT_NODE, at) == -1
        and text.find('"XmlExpr"', at) == -1
    ):
        columns = _plain_target_names(text, at + len('{"exprs":'))
        if columns is not _UNDECIDED:
            return Shape(kind=kind, columns=columns)
    returning, _ = _DECODER.raw_decode(text, at)
    exprs = returning.get("exprs") if isinstance(returning, dict) else None
    return Shape(kind=kind, columns=_target_names(exprs) if exprs else ())


@lru_cache(maxsize=1024)
def constant_of(text: str) -> bool | None:
    """:attr:`Shape.constant` of a lone SELECT from its JSON tree (cached like :func:`analyse`)."""
    stmts: list[JsonNode] = json.loads(text).get("stmts") or []
    kind, body = next(iter(stmts[0]["stmt"].items()))
    return _constant_condition(kind, body)


def _char_offset(text: str, byte_offset: int) -> int:
    if text.isascii():
        return byte_offset
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", "ignore"))


# ---------------------------------------------------------------------------------------------
# Statements that cannot run inside a transaction block
# ---------------------------------------------------------------------------------------------

_NEVER_IN_TRANSACTION = {
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
    "CallStmt": "CALL (a procedure may COMMIT)",
}


def _non_transactional(kind: str, body: JsonNode) -> str | None:
    if kind in _NEVER_IN_TRANSACTION:
        return _NEVER_IN_TRANSACTION[kind]
    if kind == "VacuumStmt" and body.get("is_vacuumcmd"):
        return "VACUUM"
    if kind == "IndexStmt" and body.get("concurrent"):
        return "CREATE INDEX CONCURRENTLY"
    if kind == "DropStmt" and body.get("concurrent"):
        return "DROP INDEX CONCURRENTLY"
    if kind == "ReindexStmt":
        options = {e["DefElem"].get("defname") for e in body.get("params") or () if "DefElem" in e}
        if "concurrently" in options:
            return "REINDEX CONCURRENTLY"
        if body.get("kind") in ("REINDEX_OBJECT_DATABASE", "REINDEX_OBJECT_SYSTEM"):
            return "REINDEX DATABASE/SYSTEM"
    if kind == "DiscardStmt" and body.get("target") == "DISCARD_ALL":
        return "DISCARD ALL"
    if kind == "ClusterStmt" and not body.get("relation"):
        return "CLUSTER without a table"
    if kind == "AlterDatabaseStmt" and any(
        e.get("DefElem", {}).get("defname") == "tablespace" for e in body.get("options") or ()
    ):
        return "ALTER DATABASE SET TABLESPACE"
    if kind == "AlterTableStmt":
        for command in body.get("cmds") or ():
            cmd = command.get("AlterTableCmd", {})
            if cmd.get("subtype") == "AT_DetachPartition" and (
                cmd.get("def", {}).get("PartitionCmd", {}).get("concurrent")
            ):
                return "DETACH PARTITION CONCURRENTLY"
    return None


# ---------------------------------------------------------------------------------------------
# Output columns (PostgreSQL's FigureColname, for the cases the text decides)
# ---------------------------------------------------------------------------------------------

_ROWS_UNKNOWN = {
    "CallStmt",
    "ExplainStmt",
    "FetchStmt",
    "ExecuteStmt",
    "CopyStmt",
    "DoStmt",
}


def _columns(kind: str, body: JsonNode) -> tuple[str, ...] | None:
    if kind == "SelectStmt":
        return _select_columns(body)
    if kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
        returning = body.get("returningClause") or {}
        exprs = returning.get("exprs") if isinstance(returning, dict) else None
        if exprs is None:
            exprs = body.get("returningList")
        return _target_names(exprs) if exprs else ()
    if kind == "VariableShowStmt":
        name = body.get("name", "")
        return ("TimeZone",) if name == "timezone" else (name,)
    if kind in _ROWS_UNKNOWN:
        return None
    return ()


def _select_columns(body: JsonNode) -> tuple[str, ...] | None:
    if body.get("op", "SETOP_NONE") != "SETOP_NONE":
        return _select_columns(body.get("larg") or {})
    if body.get("valuesLists"):
        first = body["valuesLists"][0].get("List", {}).get("items") or []
        return tuple(f"column{i + 1}" for i in range(len(first)))
    return _target_names(body.get("targetList") or [])


def _target_names(targets: list[JsonNode]) -> tuple[str, ...] | None:
    names: list[str] = []
    for target in targets:
        res = target.get("ResTarget", {})
        name = res.get("name")
        if name is None:
            name = _figure_colname(res.get("val") or {})
        if name is None:
            return None
        if name not in names:
            names.append(name)
    return tuple(names)


_FUNCTION_LIKE = {
    "CoalesceExpr": "coalesce",
    "CaseExpr": "case",
    "A_ArrayExpr": "array",
    "RowExpr": "row",
    "GroupingFunc": "grouping",
    "NullIfExpr": "nullif",
    "XmlSerialize": "xmlserialize",
}
_SVF_NAMES = {
    "SVFOP_CURRENT_DATE": "current_date",
    "SVFOP_CURRENT_TIME": "current_time",
    "SVFOP_CURRENT_TIME_N": "current_time",
    "SVFOP_CURRENT_TIMESTAMP": "current_timestamp",
    "SVFOP_CURRENT_TIMESTAMP_N": "current_timestamp",
    "SVFOP_LOCALTIME": "localtime",
    "SVFOP_LOCALTIME_N": "localtime",
    "SVFOP_LOCALTIMESTAMP": "localtimestamp",
    "SVFOP_LOCALTIMESTAMP_N": "localtimestamp",
    "SVFOP_CURRENT_ROLE": "current_role",
    "SVFOP_CURRENT_USER": "current_user",
    "SVFOP_USER": "user",
    "SVFOP_SESSION_USER": "session_user",
    "SVFOP_CURRENT_CATALOG": "current_catalog",
    "SVFOP_CURRENT_SCHEMA": "current_schema",
}


def _figure_colname(node: JsonNode) -> str | None:
    """The column name PostgreSQL gives an unnamed select-list entry; None for ``*``."""
    name = _colname(node)
    return "?column?" if name == "" else name


def _colname(node: JsonNode) -> str | None:
    if not node:
        return ""
    kind, body = next(iter(node.items()))
    if kind == "ColumnRef":
        last = (body.get("fields") or [{}])[-1]
        if "A_Star" in last:
            return None
        return str(last.get("String", {}).get("sval", ""))
    if kind == "A_Indirection":
        for item in reversed(body.get("indirection") or []):
            if "String" in item:
                return str(item["String"].get("sval", ""))
            if "A_Star" in item:
                return None
        return _colname(body.get("arg") or {})
    if kind == "FuncCall":
        return str((body.get("funcname") or [{}])[-1].get("String", {}).get("sval", ""))
    if kind == "TypeCast":
        inner = _colname(body.get("arg") or {})
        if inner:
            return inner
        names = body.get("typeName", {}).get("names") or [{}]
        return str(names[-1].get("String", {}).get("sval", ""))
    if kind == "CollateClause":
        return _colname(body.get("arg") or {})
    if kind == "SubLink":
        link = body.get("subLinkType")
        if link in ("EXPR_SUBLINK", "ARRAY_SUBLINK"):
            if link == "ARRAY_SUBLINK":
                return "array"
            sub = body.get("subselect", {}).get("SelectStmt", {})
            columns = _select_columns(sub)
            return columns[0] if columns else ""
        if link == "EXISTS_SUBLINK":
            return "exists"
        return ""
    if kind == "MinMaxExpr":
        return "greatest" if body.get("op") == "IS_GREATEST" else "least"
    if kind == "SQLValueFunction":
        return _SVF_NAMES.get(str(body.get("op")), "")
    if kind in _FUNCTION_LIKE:
        return _FUNCTION_LIKE[kind]
    return ""


# Reading a select list without decoding it (:func:`_plain_target_names`).
_UNDECIDED: tuple[str, ...] = ("<undecided>",)  # compared by identity
# The end of a statement node's name (``"SelectStmt":{``, ``"InsertStmt":{``, …).
_STATEMENT_NODE = 'Stmt":{'
_TARGET = '{"ResTarget":{'
_JSON_STRING = r'"((?:[^"\\]|\\.)*)"'
_NAMED = re.compile(r'"name":' + _JSON_STRING)
# An unnamed entry's expression: its node kind, and for a column reference its fields.
_VALUE = re.compile(r'"val":\{"(\w+)":\{')
_FIELDS = re.compile(
    r'"fields":\[(?:\{"String":\{"sval":(?:"(?:[^"\\]|\\.)*")\}\},)*'
    r'\{"String":\{"sval":' + _JSON_STRING + r"\}\}\]"
)
# The expression kinds :func:`_colname` names by looking inside them (all others: "").
_NAMED_BY_CONTENT = frozenset(
    {
        "ColumnRef",
        "A_Indirection",
        "FuncCall",
        "TypeCast",
        "CollateClause",
        "SubLink",
        "MinMaxExpr",
        "SQLValueFunction",
        *_FUNCTION_LIKE,
    }
)


def _plain_target_names(text: str, start: int) -> tuple[str, ...] | None:
    """:func:`_target_names` of the target list at ``start``, read without decoding it.

    The caller knows that every ``ResTarget`` from ``start`` on is an entry of this list.
    Decided where each entry is named, a plain column reference or an expression named by its
    kind alone; else ``_UNDECIDED``. As in :func:`_quick_shape`, the substring tests are exact
    because a quote inside a JSON string is escaped.
    """
    names: list[str] = []
    at = text.find(_TARGET, start)
    if at != start + 1:  # the list opens with its first entry
        return _UNDECIDED
    while at != -1:
        body = at + len(_TARGET)
        named = _NAMED.match(text, body)
        if named is not None:
            name = named.group(1)
        else:
            value = _VALUE.match(text, body)
            if value is None:
                return _UNDECIDED
            kind = value.group(1)
            if kind == "ColumnRef":
                fields = _FIELDS.match(text, value.end())
                if fields is None:
                    return (
                        None if text.startswith('"fields":[{"A_Star"', value.end()) else _UNDECIDED
                    )
                name = fields.group(1)
            elif kind in _NAMED_BY_CONTENT:
                return _UNDECIDED
            else:
                name = "?column?"
        if "\\" in name:
            name = json.loads(f'"{name}"')
        if name not in names:
            names.append(name)
        at = text.find(_TARGET, body)
    return tuple(names)


# ---------------------------------------------------------------------------------------------
# Constant conditions
# ---------------------------------------------------------------------------------------------


class _NotConstant(Exception):
    pass


_SELECT_CLAUSES = (
    "fromClause",
    "groupClause",
    "havingClause",
    "windowClause",
    "withClause",
    "distinctClause",
    "sortClause",
    "limitCount",
    "limitOffset",
    "lockingClause",
    "intoClause",
    "valuesLists",
)


def _constant_condition(kind: str, body: JsonNode) -> bool | None:
    """Truthiness (behaviour §7.1) of ``SELECT <constant>`` conditions; None if not constant."""
    if kind != "SelectStmt" or body.get("op", "SETOP_NONE") != "SETOP_NONE":
        return None
    if any(body.get(clause) for clause in _SELECT_CLAUSES):
        return None
    targets = body.get("targetList") or []
    if not targets:
        return None
    try:
        if "whereClause" in body and not _truthy(_evaluate(body["whereClause"])):
            return False
        first = _evaluate(targets[0].get("ResTarget", {}).get("val") or {})
        for target in targets[1:]:  # the other columns must not fail or have effects either
            _evaluate(target.get("ResTarget", {}).get("val") or {})
    except (_NotConstant, ArithmeticError, ValueError):
        return None
    return _truthy(first)


def _truthy(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in ("", "false", "f", "no"):
        return False
    if text in ("true", "t", "yes"):
        return True
    try:
        return float(text) != 0
    except ValueError:
        return True


_BOOL_TEXT = {"true": True, "t": True, "yes": True, "on": True, "1": True,
              "false": False, "f": False, "no": False, "off": False, "0": False}  # fmt: skip
_COMPARE = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}
_ARITHMETIC = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}


def _evaluate(node: JsonNode) -> object:
    """Evaluate a constant expression of literals, casts to boolean/integer and operators."""
    kind, body = next(iter(node.items())) if node else ("", {})
    if kind == "A_Const":
        if body.get("isnull"):
            return None
        if "boolval" in body:
            return bool(body["boolval"].get("boolval", False))
        if "ival" in body:
            return _int4(int(body["ival"].get("ival", 0)))
        if "fval" in body:
            return float(body["fval"]["fval"])
        if "sval" in body:
            return str(body["sval"].get("sval", ""))
        raise _NotConstant
    if kind == "TypeCast":
        value = _evaluate(body.get("arg") or {})
        names = [n.get("String", {}).get("sval") for n in body["typeName"].get("names") or []]
        if body["typeName"].get("arrayBounds"):
            raise _NotConstant
        target = names[-1] if names else ""
        if target == "bool":
            if value is None or isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
                return _BOOL_TEXT[value.strip().lower()]
            if isinstance(value, int):
                return value != 0
        elif target in ("int2", "int4", "int8"):
            if value is None:
                return None
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, int):
                return value
            if isinstance(value, str):
                return int(value.strip())
        raise _NotConstant
    if kind == "BoolExpr":
        args = [_evaluate(a) for a in body.get("args") or []]
        if any(a is not None and not isinstance(a, bool) for a in args):
            raise _NotConstant
        op = body.get("boolop")
        if op == "NOT_EXPR":
            return None if args[0] is None else not args[0]
        if op == "AND_EXPR":
            if any(a is False for a in args):
                return False
            return None if any(a is None for a in args) else True
        if op == "OR_EXPR":
            if any(a is True for a in args):
                return True
            return None if any(a is None for a in args) else False
        raise _NotConstant
    if kind == "NullTest":
        value = _evaluate(body.get("arg") or {})
        is_null = value is None
        return is_null if body.get("nulltesttype") == "IS_NULL" else not is_null
    if kind == "A_Expr" and body.get("kind") == "AEXPR_OP":
        op = (body.get("name") or [{}])[-1].get("String", {}).get("sval")
        left = _evaluate(body["lexpr"]) if "lexpr" in body else 0
        right = _evaluate(body.get("rexpr") or {})
        if left is None or right is None:
            return None
        if op in _COMPARE:
            if type(left) is not type(right) and not (_numeric(left) and _numeric(right)):
                raise _NotConstant
            return bool(_COMPARE[op](left, right))
        if op in _ARITHMETIC and _numeric(left) and _numeric(right):
            return _int4(_ARITHMETIC[op](left, right))
    raise _NotConstant


_INT4 = 2**31


def _int4(value: object) -> object:
    """Integer results outside int4 would overflow (or change type) in PostgreSQL."""
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT4 <= value < _INT4:
        raise _NotConstant
    return value


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
