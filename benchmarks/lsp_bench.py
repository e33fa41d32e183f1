"""Language server latency through a real client over stdio, on a generated 1,000-line file.

Measures, with ``dfc lsp`` running as a subprocess and driven by pygls's client:

* edit → diagnostics: from sending a one-character ``didChange`` to receiving the
  ``publishDiagnostics`` for that document version (p50/p95), for each debounce delay given;
* completion: round trip of ``textDocument/completion`` at ``$``, ``$name.``, ``{`` and
  ``df.`` positions spread over the file (p50/p95);
* the server's resident memory (VmRSS) after the run.

Targets: diagnostics p95 ≤ 50 ms, completion p95 ≤ 20 ms. The debounce delay is part of the
edit → diagnostics time (that is what a user waits for), so it is reported next to it.

    .venv/bin/python benchmarks/lsp_bench.py [--lines 1000] [--edits 100] [--debounce 0 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

STATEMENT = """SELECT df.start(
    'SELECT {i} AS id, now() AS at, ''{{region}}'' AS region' |=> 'a{i}'
    ~> (('SELECT $a{i}.id' & df.sleep(5)) |=> 'b{i}')
    ~> df.http('https://example.com/{{region}}/$a{i}.id', 'GET')
    ~> 'SELECT $b{i} IS NOT NULL' ?> df.wait_for_signal('go', 10) !> df.wait_for_schedule('0 9 * * 1-5'),
    'wf{i}'
);
"""


def generate(lines: int, warnings: bool = False) -> str:
    """A file of ``lines`` lines; with ``warnings`` each workflow also draws two warnings."""
    template = STATEMENT
    if warnings:  # unparenthesised `&` under `|=>`: a portability warning and an unused result
        template = STATEMENT.replace(
            "(('SELECT $a{i}.id' & df.sleep(5)) |=>", "('SELECT $a{i}.id' & df.sleep(5) |=>"
        )
    parts = ["SELECT df.setvar('region', 'eu');\n"]
    count = 1
    index = 0
    while count < lines:
        statement = template.format(i=index)
        parts.append(statement)
        count += statement.count("\n")
        index += 1
    return "".join(parts)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def position_of(text: str, offset: int) -> lsp.Position:
    line = text.count("\n", 0, offset)
    return lsp.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


async def run(
    lines: int, edits: int, completions: int, debounce: int, warnings: bool
) -> dict[str, float]:
    client = LanguageClient("dfc-bench", "1")
    published: dict[int, float] = {}
    waiters: dict[int, asyncio.Future[None]] = {}
    published_count = [0]

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)  # type: ignore[untyped-decorator]
    def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        if params.version is not None:
            published[params.version] = time.perf_counter()
            published_count[0] = max(published_count[0], len(params.diagnostics))
            waiter = waiters.pop(params.version, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    await client.start_io(sys.executable, "-m", "dfc", "lsp")
    server = client._server
    assert server is not None
    capabilities = lsp.ClientCapabilities(
        text_document=lsp.TextDocumentClientCapabilities(
            completion=lsp.CompletionClientCapabilities(
                completion_item=lsp.ClientCompletionItemOptions(snippet_support=True)
            ),
            publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(version_support=True),
        )
    )
    await client.initialize_async(
        lsp.InitializeParams(
            capabilities=capabilities, initialization_options={"debounceMs": debounce}
        )
    )
    client.initialized(lsp.InitializedParams())
    text = generate(lines, warnings)
    uri = "file:///bench/generated.dsql"
    loop = asyncio.get_running_loop()
    waiters[1] = loop.create_future()
    started = time.perf_counter()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="dsql", version=1, text=text)
        )
    )
    await asyncio.wait_for(waiters[1], 300)
    open_seconds = time.perf_counter() - started

    # One-character edits: type a digit into a SQL string, then delete it again.
    edit_times: list[float] = []
    anchors = [i for i in range(len(text)) if text.startswith("AS id", i)]
    version = 1
    for n in range(edits):
        anchor = anchors[(n // 2 * 7) % len(anchors)]
        version += 1
        if n % 2 == 0:
            change = lsp.TextDocumentContentChangePartial(
                range=lsp.Range(position_of(text, anchor), position_of(text, anchor)), text="x"
            )
            text = text[:anchor] + "x" + text[anchor:]
        else:
            change = lsp.TextDocumentContentChangePartial(
                range=lsp.Range(position_of(text, anchor), position_of(text, anchor + 1)), text=""
            )
            text = text[:anchor] + text[anchor + 1 :]
        waiters[version] = loop.create_future()
        sent = time.perf_counter()
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=version), [change]
            )
        )
        await asyncio.wait_for(waiters[version], 60)
        edit_times.append(published[version] - sent)

    # Completion at the kinds of places users ask for it.
    targets: list[int] = []
    for needle, delta in (("$a", 1), ("$a", 0), ("{region}", 1), ("df.sleep", 3)):
        start = 0
        while len(targets) < completions and (found := text.find(needle, start)) >= 0:
            targets.append(found + delta + (0 if needle != "$a" or delta else 1))
            start = found + 997  # spread over the file
    completion_times: list[float] = []
    for offset in targets[:completions]:
        sent = time.perf_counter()
        await client.text_document_completion_async(
            lsp.CompletionParams(lsp.TextDocumentIdentifier(uri), position_of(text, offset))
        )
        completion_times.append(time.perf_counter() - sent)

    rss = rss_kib(server.pid)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]
    return {
        "lines": text.count("\n"),
        "open_s": open_seconds,
        "debounce_ms": debounce,
        "diag_p50_ms": statistics.median(edit_times) * 1000,
        "diag_p95_ms": percentile(edit_times, 0.95) * 1000,
        "completion_p50_ms": statistics.median(completion_times) * 1000,
        "completion_p95_ms": percentile(completion_times, 0.95) * 1000,
        "completions": len(completion_times),
        "diagnostics": published_count[0],
        "rss_mib": rss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--completions", type=int, default=200)
    parser.add_argument("--debounce", type=int, nargs="+", default=[0, 20])
    parser.add_argument(
        "--warnings", action="store_true", help="a file with ~300 warnings instead of a clean one"
    )
    args = parser.parse_args()
    print("debounce | edit→diagnostics p50 / p95 | completion p50 / p95 | RSS | open")
    for debounce in args.debounce:
        result = asyncio.run(run(args.lines, args.edits, args.completions, debounce, args.warnings))
        print(
            f"{result['debounce_ms']:>5.0f} ms | "
            f"{result['diag_p50_ms']:6.1f} / {result['diag_p95_ms']:6.1f} ms | "
            f"{result['completion_p50_ms']:5.1f} / {result['completion_p95_ms']:5.1f} ms "
            f"({result['completions']}) | {result['rss_mib']:.0f} MiB | "
            f"{result['open_s']:.2f} s for {result['lines']} lines "
            f"(up to {result['diagnostics']} diagnostics)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
