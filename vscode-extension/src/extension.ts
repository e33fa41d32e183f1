/**
 * Entry point of the dfc extension: wires settings, the restart command and the language server
 * together. Highlighting and snippets are declarative (package.json, syntaxes/, snippets/);
 * everything else is the server's job.
 */
import * as os from "node:os";
import * as vscode from "vscode";
import * as log from "./log";
import { restartServer, stopServer } from "./server";
import { SECTION, needsRestart, readSettings, type Settings } from "./settings";

let current: Settings | undefined;

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    log.outputChannel(),
    vscode.commands.registerCommand("dfc.restartServer", () => restart("restart requested")),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SECTION)) return;
      const next = load();
      if (current === undefined || needsRestart(current, next)) {
        void restart("settings changed", next);
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => restart("workspace trusted")),
  );
  // Not awaited: a slow or missing server must not hold up activation; failures are reported.
  void restart("activated");
}

export async function deactivate(): Promise<void> {
  await stopServer();
}

/** Reads the settings, logging any that had to fall back to a default. */
function load(): Settings {
  const { settings, problems } = readSettings(vscode.workspace, os.homedir());
  for (const problem of problems) log.warn(problem.message);
  return settings;
}

async function restart(reason: string, settings: Settings = load()): Promise<void> {
  log.info(`(Re)starting the language server: ${reason}.`);
  current = settings;
  await restartServer(settings);
}
