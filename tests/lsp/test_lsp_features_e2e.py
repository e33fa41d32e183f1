"""Every feature over stdio, against the recorded capabilities of VS Code and Neovim."""

from __future__ import annotations

import pytest
from lsp_e2e import Doc, open_doc
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from compiler.api import check_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

FILE = """SELECT df.setvar('region', 'eu');
SELECT df.start(
    'SELECT 1 AS id, 2 AS total' |=> 'orders'
    ~> ('SELECT 2' |=> 'left' & 'SELECT $orders.id' |=> 'right')
    ~> df.http('https://x.test/{region}/$orders.id', 'GET'),
    'first'
);
SELECT df.start(
    'SELECT 1 AS id' |=> 'orders'
    ~> df.wait_for_schedule('0 9 * * 1-5')
    ~> 'SELECT $orders.id',
    'second'
);
"""


def completion_labels(result: lsp.CompletionList | list[lsp.CompletionItem] | None) -> list[str]:
    if result is None:
        return []
    items = result.items if isinstance(result, lsp.CompletionList) else result
    return [item.label for item in items]


async def test_server_announces_its_features(client: LanguageClient) -> None:
    doc = await open_doc(client, FILE)
    assert doc.uri in client.diagnostics
    # The session is initialised by the fixture; the capabilities it negotiated drive every test.
    assert client.capabilities is not None


async def test_completion_scoping_over_stdio(client: LanguageClient) -> None:
    doc = await open_doc(client, FILE)
    # Type `$` inside the right JOIN branch: only names bound before the join are in scope.
    doc.edit(doc.pos("$orders.id"), doc.pos("$orders.id", 10), "$")
    result = await client.text_document_completion_async(
        lsp.CompletionParams(doc.ident(), doc.pos("$orders.id", 1))
    )
    labels = completion_labels(result)
    assert "$orders" in labels and "$left" not in labels and "$right" not in labels


async def test_column_completion(client: LanguageClient) -> None:
    doc = await open_doc(client, FILE)
    result = await client.text_document_completion_async(
        lsp.CompletionParams(doc.ident(), doc.pos("$orders.id", 8))
    )
    assert completion_labels(result) == ["id", "total"]


async def test_function_completion_respects_snippet_support(client: LanguageClient) -> None:
    doc = await open_doc(client, "SELECT df.start(df.sl")
    result = await client.text_document_completion_async(
        lsp.CompletionParams(doc.ident(), doc.pos("df.sl", 5))
    )
    assert isinstance(result, lsp.CompletionList)
    item = next(i for i in result.items if i.label == "df.sleep")
    capabilities = client.capabilities
    assert capabilities is not None
    completion = capabilities.text_document.completion if capabilities.text_document else None
    snippets = bool(
        completion and completion.completion_item and completion.completion_item.snippet_support
    )
    expected = lsp.InsertTextFormat.Snippet if snippets else lsp.InsertTextFormat.PlainText
    assert item.insert_text_format == expected


async def test_hover(client: LanguageClient) -> None:
    doc = await open_doc(client, FILE)
    result = await client.text_document_hover_async(
        lsp.HoverParams(doc.ident(), doc.pos("wait_for_schedule", 2))
    )
    assert result is not None and isinstance(result.contents, lsp.MarkupContent)
    assert "five-field cron" in result.contents.value
    cron = await client.text_document_hover_async(lsp.HoverParams(doc.ident(), doc.pos("0 9", 1)))
    assert cron is not None and isinstance(cron.contents, lsp.MarkupContent)
    assert "Monday through Friday" in cron.contents.value


async def test_definition_references_and_rename_across_workflows(client: LanguageClient) -> None:
    doc = await open_doc(client, FILE)
    use = doc.pos("$orders.id", 2, occurrence=2)  # in the second workflow
    found = await client.text_document_definition_async(lsp.DefinitionParams(doc.ident(), use))
    assert isinstance(found, list) and len(found) == 1
    assert isinstance(found[0], lsp.Location)
    assert found[0].range.start == doc.pos("'orders'", 1, occurrence=1)
    refs = await client.text_document_references_async(
        lsp.ReferenceParams(
            context=lsp.ReferenceContext(include_declaration=True),
            text_document=doc.ident(),
            position=use,
        )
    )
    assert refs is not None and sorted(r.range.start.line for r in refs) == [8, 10]
    edit = await client.text_document_rename_async(lsp.RenameParams(doc.ident(), use, "rows"))
    assert edit is not None and edit.changes is not None
    assert sorted(e.range.start.line for e in edit.changes[doc.uri]) == [8, 10]
    var_edit = await client.text_document_rename_async(
        lsp.RenameParams(doc.ident(), doc.pos("{region}", 1), "zone")
    )
    assert var_edit is not None and var_edit.changes is not None
    assert sorted(e.range.start.line for e in var_edit.changes[doc.uri]) == [0, 4]


async def test_invalid_rename_is_an_error_response(client: LanguageClient) -> None:
    doc = await open_doc(client, FILE)
    with pytest.raises(Exception, match="not a valid name"):
        await client.text_document_rename_async(
            lsp.RenameParams(doc.ident(), doc.pos("'left'", 1), "two words")
        )


async def test_document_and_workspace_symbols(client: LanguageClient) -> None:
    doc = await open_doc(client, FILE)
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(doc.ident())
    )
    assert symbols is not None
    assert [s.name for s in symbols] == ["{region}", "first", "second"]
    found = await client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query="process"))
    assert found is not None
    assert any(s.name == "process_orders" for s in found)


async def test_semantic_tokens_folding_signature_help(client: LanguageClient) -> None:
    doc = await open_doc(client, FILE)
    tokens = await client.text_document_semantic_tokens_full_async(
        lsp.SemanticTokensParams(doc.ident())
    )
    assert tokens is not None and len(tokens.data) % 5 == 0 and tokens.data
    folds = await client.text_document_folding_range_async(lsp.FoldingRangeParams(doc.ident()))
    assert folds is not None and any(f.start_line == 1 and f.end_line == 6 for f in folds)
    help_ = await client.text_document_signature_help_async(
        lsp.SignatureHelpParams(doc.ident(), doc.pos("'GET'"))
    )
    assert help_ is not None and help_.active_parameter == 1


async def test_code_actions_and_formatting(client: LanguageClient) -> None:
    doc: Doc = await open_doc(client, "SELECT df.start(df.slep(1), 'w');\n")
    diagnostics = await doc.diagnostics(lambda ds: bool(ds))
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            doc.ident(), diagnostics[0].range, lsp.CodeActionContext(diagnostics=diagnostics)
        )
    )
    assert actions is not None
    assert any(
        isinstance(a, lsp.CodeAction) and a.title == "Did you mean df.sleep?" for a in actions
    )
    messy = await open_doc(client, "SELECT df.start('SELECT 1'~>'SELECT 2','w');")
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(
            messy.ident(), lsp.FormattingOptions(tab_size=4, insert_spaces=True)
        )
    )
    assert edits is not None and len(edits) == 1 and "~>" in edits[0].new_text


async def test_refresh_schema_without_a_database(client: LanguageClient) -> None:
    result = await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="dfc.refreshSchema")
    )
    assert "no database configured" in str(result)


TYPED = """SELECT df.setvar('api', 'https://x.test');
SELECT df.start(
    'SELECT 1 AS id' |=> 'first'
    ~> df.http('{api}/$first.id', 'GET') |=> 'call'
    ~> 'SELECT $call.status',
    'typed'
);
"""


async def test_typing_a_file_character_by_character(client: LanguageClient) -> None:
    """Every intermediate text gets an answer; the server logs no error; the end equals check."""
    doc = await open_doc(client, "")
    errors_before = sum(m.type == lsp.MessageType.Error for m in client.log_messages)
    typed = ""
    for index, char in enumerate(TYPED):
        end = doc.pos(typed, len(typed)) if typed else lsp.Position(line=0, character=0)
        doc.text = typed
        doc.edit(end, end, char)
        typed += char
        doc.text = typed
        if index % 7 == 0 or char in "$.{":
            position = doc.pos(typed, len(typed))
            await client.text_document_completion_async(
                lsp.CompletionParams(text_document=doc.ident(), position=position)
            )
            await client.text_document_hover_async(
                lsp.HoverParams(text_document=doc.ident(), position=position)
            )
    expected = [d.code for d in check_text(TYPED, "typed.dsql").diagnostics]
    final = await doc.diagnostics(lambda ds: [d.code for d in ds] == expected)
    assert [d.code for d in final] == expected
    errors_after = sum(m.type == lsp.MessageType.Error for m in client.log_messages)
    assert errors_after == errors_before
