"""Semantic tokens (``textDocument/semanticTokens/full``): highlighting that knows the language.

A TextMate grammar colours by regular expressions; semantic tokens come from the compiler's own
tokens and name analysis, so ``df.*`` functions, named parameters, operators, numbers,
comments and strings are coloured as what they are, and ``$name``/``{var}`` references *inside*
SQL strings stand out as variables (their bindings and declarations as declarations).

The protocol encodes tokens as relative UTF-16 positions, one line per token; strings that
span lines are split per line for clients without multi-line token support.
"""

from __future__ import annotations

from lark import Token
from lsprotocol import types as lsp

from compiler.catalogue import load as load_catalogue
from lsp.analysis import DocumentAnalysis, StatementAnalysis
from lsp.names import occurrences
from lsp.positions import LineIndex

TOKEN_TYPES = [
    "function",
    "operator",
    "string",
    "variable",
    "parameter",
    "keyword",
    "comment",
    "number",
    "namespace",
]
TOKEN_MODIFIERS = ["declaration", "readonly", "defaultLibrary"]
LEGEND = lsp.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)

_TYPE = {name: index for index, name in enumerate(TOKEN_TYPES)}
_DECLARATION = 1
_READONLY = 2
_DEFAULT_LIBRARY = 4
_KEYWORDS = frozenset({"SELECT", "NULL", "TRUE", "FALSE"})

# (start, end, type index, modifier bits) at offsets of the analysed input.
Raw = tuple[int, int, int, int]


def _statement_tokens(analysis: StatementAnalysis) -> tuple[Raw, ...]:
    cached = analysis.derived.get("semantic_tokens")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    operators = {op.token for op in load_catalogue().operators} | {"::", "=>", ":="}
    tokens: tuple[Token, ...] = analysis.tokens
    names = [o for o in occurrences(analysis)]
    out: list[Raw] = []
    for index, token in enumerate(tokens):
        start = token.start_pos or 0
        end = token.end_pos or start + len(token)
        value = str(token)
        if token.type == "IDENT":
            previous = str(tokens[index - 1]) if index >= 1 else ""
            before = str(tokens[index - 2]).lower() if index >= 2 else ""
            following = str(tokens[index + 1]) if index + 1 < len(tokens) else ""
            if previous == "." and before == "df":
                out.append((start, end, _TYPE["function"], _DEFAULT_LIBRARY))
            elif value.lower() == "df" and following == ".":
                out.append((start, end, _TYPE["namespace"], _DEFAULT_LIBRARY))
            elif following in ("=>", ":="):
                out.append((start, end, _TYPE["parameter"], 0))
            elif previous == "::":
                out.append((start, end, _TYPE["keyword"], 0))
        elif token.type == "STRING":
            cursor = start
            for name in names:
                if name.start < start or name.end > end:
                    continue
                # Include the sigil: `$name` and `{var}` read as one token.
                sigil_start = name.start - 1 if name.kind in ("ref", "var_ref") else name.start
                sigil_end = name.end + 1 if name.kind == "var_ref" else name.end
                if sigil_start > cursor:
                    out.append((cursor, sigil_start, _TYPE["string"], 0))
                modifiers = _DECLARATION if name.kind in ("bind", "var_decl") else 0
                if name.kind in ("var_ref", "var_decl"):
                    modifiers |= _READONLY
                out.append((sigil_start, sigil_end, _TYPE["variable"], modifiers))
                cursor = sigil_end
            if cursor < end:
                out.append((cursor, end, _TYPE["string"], 0))
        elif token.type in ("INTEGER", "DECIMAL"):
            out.append((start, end, _TYPE["number"], 0))
        elif value.upper() in _KEYWORDS:
            out.append((start, end, _TYPE["keyword"], 0))
        elif value in operators:
            out.append((start, end, _TYPE["operator"], 0))
    for comment in analysis.comments:
        out.append((comment.span.start, comment.span.end, _TYPE["comment"], 0))
    out.sort()
    result = tuple(out)
    analysis.derived["semantic_tokens"] = result
    return result


def encode(analysis: DocumentAnalysis, lines: LineIndex) -> list[int]:
    """The whole document's tokens in the protocol's relative encoding."""
    data: list[int] = []
    previous_line = 0
    previous_char = 0
    text = analysis.text
    for placed in analysis.statements:
        shift = placed.shift
        for start, end, kind, modifiers in _statement_tokens(placed.analysis):
            start += shift
            end += shift
            while start < end:
                line_end = text.find("\n", start, end)
                piece_end = end if line_end < 0 else line_end
                if piece_end > start:
                    begin = lines.position(start)
                    stop = lines.position(piece_end)
                    delta_line = begin.line - previous_line
                    delta_char = (
                        begin.character - previous_char if delta_line == 0 else begin.character
                    )
                    data.extend(
                        (delta_line, delta_char, stop.character - begin.character, kind, modifiers)
                    )
                    previous_line, previous_char = begin.line, begin.character
                start = piece_end + 1 if line_end >= 0 else end
    return data
