"""Signature help (``textDocument/signatureHelp``): the ``df.*`` signature while typing a call.

Inside the parentheses of a ``df.*`` call the editor shows the function's signature from the
catalogue with the parameter the cursor is in highlighted (by position, or by name for
``name => value``), and that parameter's doc. It reads the text lexically
(:func:`lsp.context.call_at`), so it works while the call is still incomplete.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from lsp.context import call_at
from lsp.state import DocumentState

TRIGGER_CHARACTERS = ["(", ","]


def signature_help(state: DocumentState, position: lsp.Position) -> lsp.SignatureHelp | None:
    offset = state.lines.offset(position)
    placed = state.analysis.statement_at(offset)
    if placed is None:
        return None
    call = call_at(placed.analysis.text, offset - placed.start)
    if call is None or call.function is None:
        return None
    function = call.function
    label = function.signature()
    parameters: list[lsp.ParameterInformation] = []
    cursor = label.index("(") + 1
    for param in function.params:
        text = param.signature()
        start = label.index(text, cursor)
        parameters.append(
            lsp.ParameterInformation(
                label=(start, start + len(text)),
                documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, param.doc),
            )
        )
        cursor = start + len(text)
    active = call.arg_index
    if call.named is not None:
        names = [p.name for p in function.params]
        active = names.index(call.named) if call.named in names else len(names)
    doc = function.doc + ("\n\n*dfc extension*" if function.extension else "")
    signature = lsp.SignatureInformation(
        label=label,
        documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, doc),
        parameters=parameters,
        active_parameter=active,
    )
    return lsp.SignatureHelp(signatures=[signature], active_signature=0, active_parameter=active)
