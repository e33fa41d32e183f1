"""Folding ranges (``textDocument/foldingRange``): statements, multi-line strings, block comments.

Each statement that spans several lines folds as a whole; a multi-line SQL string folds on its
own (long queries are the bulk of a .dsql file); block comments fold with the ``comment`` kind
so editors can collapse them on request. Ranges come from the lexical scan, so they are there
even while a statement does not parse.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from lsp.analysis import DocumentAnalysis
from lsp.lexing import scan
from lsp.positions import LineIndex


def _fold(lines: LineIndex, start: int, end: int, kind: str | None) -> lsp.FoldingRange | None:
    first = lines.position(start).line
    last = lines.position(end).line
    if last <= first:
        return None
    return lsp.FoldingRange(start_line=first, end_line=last, kind=kind)


def folding_ranges(analysis: DocumentAnalysis, lines: LineIndex) -> list[lsp.FoldingRange]:
    out: list[lsp.FoldingRange] = []
    text = analysis.text
    for placed in analysis.statements:
        chunk = placed.analysis.text
        lexemes = scan(chunk)
        # The statement itself: from its first significant character to its end.
        body_start = placed.start + (len(chunk) - len(chunk.lstrip()))
        for lexeme in lexemes:
            if lexeme.kind == "comment" and lexeme.start == body_start - placed.start:
                body_start = placed.start + lexeme.end
                body_start += len(text[body_start : placed.end]) - len(
                    text[body_start : placed.end].lstrip()
                )
        body_end = placed.start + len(chunk.rstrip())
        statement = _fold(lines, body_start, body_end, None)
        if statement is not None:
            out.append(statement)
        for lexeme in lexemes:
            if lexeme.kind == "string":
                item = _fold(lines, placed.start + lexeme.start, placed.start + lexeme.end, None)
            elif lexeme.kind == "comment" and lexeme.opener == "/*":
                item = _fold(
                    lines,
                    placed.start + lexeme.start,
                    placed.start + lexeme.end,
                    lsp.FoldingRangeKind.Comment,
                )
            else:
                continue
            if item is not None:
                out.append(item)
    return out
