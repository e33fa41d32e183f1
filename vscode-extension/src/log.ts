/**
 * The extension's one output channel, "dfc".
 *
 * Client messages, the server's stderr and protocol traces (`dfc.trace.server`) all land here,
 * so a user reporting a problem has a single place to copy from.
 */
import * as vscode from "vscode";

let channel: vscode.LogOutputChannel | undefined;

/** Creates the channel on first use; the extension disposes it on deactivation. */
export function outputChannel(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel("dfc", { log: true });
  return channel;
}

export function info(message: string): void {
  outputChannel().info(message);
}

export function warn(message: string): void {
  outputChannel().warn(message);
}

export function error(message: string): void {
  outputChannel().error(message);
}
