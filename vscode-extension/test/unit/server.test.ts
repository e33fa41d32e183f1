/**
 * End-to-end check of the client's half of the contract with the real language server: the
 * command line from `serverCommand` starts `dfc lsp` over stdio, the server accepts the
 * `initializationOptions` the extension sends, and it answers a freshly opened document with
 * diagnostics. Needs a Python interpreter with dfc installed: DFC_PYTHON, or the repository's
 * .venv (which CI creates before running these tests); without one the test is skipped and says why.
 */
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from "vscode-jsonrpc/node";
import { initializationOptions, parseSettings, serverCommand } from "../../src/settings";

// The bundle runs from out/test/, two levels below the extension and three below the repository.
const repository = path.resolve(__dirname, "..", "..", "..");
const venvPython = path.join(repository, ".venv", "bin", "python");
const python = process.env["DFC_PYTHON"] ?? (existsSync(venvPython) ? venvPython : undefined);

interface Diagnostic {
  message: string;
  code?: string | number;
  severity?: number;
  range: { start: { line: number; character: number } };
}

describe("dfc lsp, started the way the extension starts it", { skip: python === undefined && "no Python with dfc: set DFC_PYTHON or create ../.venv" }, () => {
  let child: ChildProcess;
  let connection: MessageConnection;
  const diagnostics = new Map<string, (value: Diagnostic[]) => void>();
  let stderr = "";
  let stopping = false;
  // Settles only if the server dies on its own; every wait races against it, so a crashing
  // server fails the test with its stderr instead of leaving a request pending forever.
  let died: Promise<never>;

  function orDied<T>(pending: Promise<T>): Promise<T> {
    return Promise.race([pending, died]);
  }

  before(() => {
    const { settings } = parseSettings({ get: (key) => ({ interpreter: python })[key] });
    const { command, args } = serverCommand(settings);
    assert.deepEqual(args, ["-m", "dfc", "lsp"]);
    child = spawn(command, args, { cwd: repository, stdio: ["pipe", "pipe", "pipe"] });
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    died = new Promise<never>((_, reject) => {
      child.on("exit", (code, signal) => {
        if (!stopping) reject(new Error(`dfc lsp exited early (code ${code}, signal ${signal}):\n${stderr}`));
      });
      child.on("error", (err) => reject(new Error(`dfc lsp did not start: ${err.message}`)));
    });
    died.catch(() => undefined);
    connection = createMessageConnection(
      new StreamMessageReader(child.stdout!),
      new StreamMessageWriter(child.stdin!),
    );
    connection.onNotification("textDocument/publishDiagnostics", (params: { uri: string; diagnostics: Diagnostic[] }) => {
      diagnostics.get(params.uri)?.(params.diagnostics);
    });
    connection.listen();
  });

  after(async () => {
    stopping = true;
    if (child.exitCode !== null) return connection.dispose();
    try {
      await connection.sendRequest("shutdown");
      await connection.sendNotification("exit");
    } finally {
      connection.dispose();
      child.kill();
    }
  });

  it("initializes with the extension's initializationOptions", async () => {
    const { settings } = parseSettings({ get: () => undefined });
    const result = await orDied(connection.sendRequest<{ capabilities: Record<string, unknown> }>("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(repository).href,
      capabilities: {},
      initializationOptions: initializationOptions(settings),
    }));
    assert.ok(result.capabilities["textDocumentSync"] !== undefined, `capabilities: ${JSON.stringify(result.capabilities)}\n${stderr}`);
    await connection.sendNotification("initialized", {});
  });

  it("publishes diagnostics for an opened .dsql document", { timeout: 60_000 }, async () => {
    const uri = pathToFileURL(path.join(repository, "examples", "client-check.dsql")).href;
    // The server may clear a document's diagnostics before it publishes them: wait for a non-empty set.
    const published = new Promise<Diagnostic[]>((resolve) =>
      diagnostics.set(uri, (found) => {
        if (found.length > 0) resolve(found);
      }),
    );
    await connection.sendNotification("textDocument/didOpen", {
      textDocument: { uri, languageId: "dsql", version: 1, text: "'SELECT 1' ~> ;\n" },
    });
    const found = await orDied(published);
    // The wording belongs to the compiler; the contract here is a coded error on the bad line.
    assert.ok(
      found.some((d) => d.range.start.line === 0 && d.code !== undefined && d.severity === 1),
      `expected a coded error on line 1, got ${JSON.stringify(found)}\n${stderr}`,
    );
  });
});
