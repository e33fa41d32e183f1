"""Hover, symbols, semantic tokens, folding, code actions, signature help, formatting."""

from __future__ import annotations

from datetime import UTC, datetime

from lsp_helpers import covered, position, state_of, with_cursor
from lsprotocol import types as lsp

from lsp.code_actions import code_actions
from lsp.cron import describe, next_times
from lsp.diagnostics import document_diagnostics
from lsp.folding import folding_ranges
from lsp.formatting import format_document
from lsp.hover import hover
from lsp.semantic_tokens import TOKEN_TYPES, encode
from lsp.signature_help import signature_help
from lsp.symbols import document_symbols

FILE = """SELECT df.setvar('base', 'https://x.test');
/* Orders
   pipeline */
SELECT df.start(
    'SELECT 1 AS id, 2 AS total' |=> 'orders'
    ~> df.wait_for_schedule('0 9 * * 1-5')
    ~> df.http('{base}/$orders.id', 'GET'),
    'nightly'
);
"""


def text_of(result: lsp.Hover | None) -> str:
    assert result is not None and isinstance(result.contents, lsp.MarkupContent)
    return result.contents.value


def test_hover_function_operator_name_variable_and_cron() -> None:
    state = state_of(FILE)
    assert "df.wait_for_schedule(cron_expr text" in text_of(
        hover(state, position(state, "wait_for", 2))
    )
    assert "Sequence" in text_of(hover(state, position(state, "~>", 1)))
    name = text_of(hover(state, position(state, "$orders", 2)))
    assert "bound on line 5" in name and "`id`, `total`" in name
    assert "https://x.test" in text_of(hover(state, position(state, "{base}", 2)))
    cron = text_of(hover(state, position(state, "0 9 *", 2)))
    assert "At 09:00, on Monday through Friday" in cron and cron.count("\n- ") == 3


def test_cron_words_and_times() -> None:
    assert describe("*/15 * * * *") == "Every 15 minutes"
    times = next_times("0 9 * * 1-5", None, 3, datetime(2026, 1, 2, 10, 0, tzinfo=UTC))  # a Friday
    assert [t.day for t in times] == [5, 6, 7]


def test_document_symbols() -> None:
    state = state_of(FILE)
    symbols = document_symbols(state.analysis, state.lines)
    assert [s.name for s in symbols] == ["{base}", "nightly"]
    workflow = symbols[1]
    assert workflow.kind == lsp.SymbolKind.Function
    assert [c.name for c in workflow.children or []] == ["$orders"]


def decode(data: list[int]) -> list[tuple[int, int, int, str]]:
    out, line, char = [], 0, 0
    for i in range(0, len(data), 5):
        dl, dc, length, kind, _ = data[i : i + 5]
        line += dl
        char = dc if dl else char + dc
        out.append((line, char, length, TOKEN_TYPES[kind]))
    return out


def test_semantic_tokens_mark_names_inside_sql() -> None:
    state = state_of(FILE)
    tokens = decode(encode(state.analysis, state.lines))
    lines = FILE.splitlines()
    spelled = {(lines[line][char : char + length], kind) for line, char, length, kind in tokens}
    assert ("wait_for_schedule", "function") in spelled
    assert ("~>", "operator") in spelled
    assert ("$orders", "variable") in spelled
    assert ("{base}", "variable") in spelled
    assert ("orders", "variable") in spelled  # the binding, as a declaration
    assert ("   pipeline */", "comment") in spelled  # multi-line comments split per line
    positions = [(line, char) for line, char, _, _ in tokens]
    assert positions == sorted(positions)


def test_folding_statements_strings_and_comments() -> None:
    state = state_of(FILE)
    ranges = folding_ranges(state.analysis, state.lines)
    assert any(r.start_line == 3 and r.end_line == 8 for r in ranges)
    assert any(r.kind == lsp.FoldingRangeKind.Comment and r.start_line == 1 for r in ranges)


def test_code_actions_from_compiler_fixes_and_did_you_mean() -> None:
    text = (
        "SELECT df.setvar('api', 'x');\nSELECT df.start(df.slep(1), 'v');\n"
        "SELECT df.start(df.http('https://x.test/{apii}'), 'w');\n"
    )
    state = state_of(text)
    published = document_diagnostics(state.analysis.diagnostics, state.lines, state.uri)
    actions = code_actions(state, published[0].range, published)
    titles = [a.title for a in actions]
    assert "Did you mean df.sleep?" in titles
    assert "Use {api}" in titles
    fix = next(a for a in actions if a.title == "Use {api}")
    assert fix.edit is not None and fix.edit.changes is not None
    assert [e.new_text for e in fix.edit.changes[state.uri]] == ["{api}"]


def test_one_null_safe_quick_fix_for_names_bound_on_some_paths() -> None:
    text = "SELECT df.start(('SELECT 1' |=> 'a' | 'SELECT 2') ~> 'SELECT $a', 'w');\n"
    state = state_of(text)
    published = document_diagnostics(state.analysis.diagnostics, state.lines, state.uri)
    assert [d.code for d in published] == ["DFC302"]
    actions = code_actions(state, published[0].range, published)
    inserts = [
        e.new_text
        for a in actions
        if a.edit is not None and a.edit.changes is not None
        for e in a.edit.changes[state.uri]
    ]
    assert inserts == ["?"]


def test_signature_help_active_parameter() -> None:
    state, pos = with_cursor("SELECT df.start(df.http('https://x.test', │")
    help_ = signature_help(state, pos)
    assert help_ is not None and help_.active_parameter == 1
    assert help_.signatures[0].label.startswith("df.http(url text")
    state, pos = with_cursor("SELECT df.start(df.http('u', timeout_seconds => │")
    help_ = signature_help(state, pos)
    assert help_ is not None and help_.active_parameter == 4


def test_formatting_uses_the_formatter() -> None:
    from compiler.formatter import format_text

    text = "SELECT df.start('SELECT 1'~>'SELECT 2','w');"
    state = state_of(text)
    edits = format_document(text, "f.dsql", state.lines)
    expected = format_text(text, "f.dsql")
    if expected == text:
        assert edits == []
    else:
        assert len(edits) == 1 and edits[0].new_text == expected
        assert covered(state, edits[0].range) == text
    assert format_document("SELECT df.start('x' ~> , 'w');", "f.dsql", state.lines) == []
