/**
 * Starts, stops and restarts the dfc language server (`dfc lsp` over stdio).
 *
 * All language knowledge lives in the server; this module only turns settings into a command
 * line and a `LanguageClient`. Restarts are serialised, so a burst of settings changes or
 * repeated "Restart Language Server" commands never leaves two servers running.
 */
import * as vscode from "vscode";
import {
  LanguageClient,
  RevealOutputChannelOn,
  State,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import * as log from "./log";
import { initializationOptions, serverCommand, type Settings } from "./settings";

const CLIENT_ID = "dfc";
const CLIENT_NAME = "dfc Language Server";

let client: LanguageClient | undefined;
let queue: Promise<void> = Promise.resolve();

/** Stops the running server, if any, then starts one with `settings`. */
export function restartServer(settings: Settings): Promise<void> {
  queue = queue.then(async () => {
    await stop();
    await start(settings);
  });
  return queue;
}

/** Stops the running server, if any. */
export function stopServer(): Promise<void> {
  queue = queue.then(stop);
  return queue;
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running === undefined) return;
  try {
    if (running.state !== State.Stopped) await running.stop();
    await running.dispose();
  } catch (err) {
    log.warn(`Stopping the language server failed: ${describe(err)}`);
  }
}

async function start(settings: Settings): Promise<void> {
  const { command, args } = serverCommand(settings);
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const serverOptions: ServerOptions = {
    command,
    args,
    options: cwd === undefined ? {} : { cwd },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "dsql" },
      { scheme: "untitled", language: "dsql" },
    ],
    initializationOptions: initializationOptions(settings),
    outputChannel: log.outputChannel(),
    traceOutputChannel: log.outputChannel(),
    revealOutputChannelOn: RevealOutputChannelOn.Never,
  };

  log.info(`Starting the language server: ${[command, ...args].map(quote).join(" ")}`);
  const next = new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
  try {
    await next.start();
    client = next;
    log.info("The language server is running.");
  } catch (err) {
    await next.dispose().catch(() => undefined);
    reportStartFailure(settings, command, err);
  }
}

/** Tells the user why the server did not start and where to fix it. */
function reportStartFailure(settings: Settings, command: string, err: unknown): void {
  const setting = settings.interpreter !== "" ? "dfc.interpreter" : "dfc.path";
  const hint =
    settings.interpreter !== ""
      ? `Check that ${command} is a Python interpreter with dfc installed (pip install dfc).`
      : `Check that "${command}" is installed and on PATH, or set ${setting} (or dfc.interpreter) to where dfc lives.`;
  log.error(`The language server did not start: ${describe(err)}. ${hint}`);
  const openSettings = "Open Settings";
  const showLog = "Show Log";
  void vscode.window
    .showErrorMessage(`dfc: the language server did not start. ${hint}`, openSettings, showLog)
    .then((choice) => {
      if (choice === openSettings) {
        void vscode.commands.executeCommand("workbench.action.openSettings", setting);
      } else if (choice === showLog) {
        log.outputChannel().show();
      }
    });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function quote(part: string): string {
  return /^[\w@%+=:,./-]+$/.test(part) ? part : JSON.stringify(part);
}
