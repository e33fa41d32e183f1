/**
 * The extension's settings, read once per server start into a typed record.
 *
 * Values come from VS Code's configuration but are checked here, so a hand-edited settings.json
 * with a wrong type falls back to the default and says so in the log, instead of reaching the
 * server as garbage. The pure functions (`parseSettings`, `serverCommand`,
 * `initializationOptions`) take no `vscode` objects, which keeps them unit-testable in Node.
 */
import type * as vscode from "vscode";

export const SECTION = "dfc";

export type TraceLevel = "off" | "messages" | "verbose";

export interface Settings {
  /** The `dfc` executable (a bare name is looked up on PATH). */
  readonly path: string;
  /** A Python interpreter; when non-empty the server runs as `<interpreter> -m dfc lsp`. */
  readonly interpreter: string;
  /** Extra arguments after `lsp`. */
  readonly args: readonly string[];
  /** PostgreSQL DSN for table/column completion; empty means no database. */
  readonly dsn: string;
  /** Milliseconds the server waits after an edit before checking the document. */
  readonly debounceMs: number;
  readonly trace: TraceLevel;
}

export const DEFAULTS: Settings = {
  path: "dfc",
  interpreter: "",
  args: [],
  dsn: "",
  debounceMs: 20,
  trace: "off",
};

/** The settings that change how the server is started: a change to any of them restarts it. */
export const RESTART_KEYS = ["path", "interpreter", "args", "dsn", "debounceMs"] as const;

/** The part of `vscode.WorkspaceConfiguration` that reading settings needs. */
export interface ConfigurationReader {
  get(section: string): unknown;
}

/** Where the `${workspaceFolder}` and `~` in path-like settings point. */
export interface Expansions {
  readonly workspaceFolder?: string | undefined;
  readonly home?: string | undefined;
}

/** A setting that had the wrong type and was replaced by its default. */
export interface SettingProblem {
  readonly key: string;
  readonly message: string;
}

export interface ParsedSettings {
  readonly settings: Settings;
  readonly problems: readonly SettingProblem[];
}

const TRACE_LEVELS: readonly TraceLevel[] = ["off", "messages", "verbose"];

/** Checks each setting's type, falling back to its default and recording why. */
export function parseSettings(config: ConfigurationReader, expansions: Expansions = {}): ParsedSettings {
  const problems: SettingProblem[] = [];
  const str = (key: keyof Settings & string, fallback: string): string => {
    const value = config.get(key);
    if (value === undefined || value === null) return fallback;
    if (typeof value === "string") return value.trim();
    problems.push({ key, message: `dfc.${key} must be a string; using "${fallback}".` });
    return fallback;
  };

  const rawArgs = config.get("args");
  let args: string[] = [];
  if (Array.isArray(rawArgs) && rawArgs.every((item) => typeof item === "string")) {
    args = rawArgs.map((item) => expand(item, expansions));
  } else if (rawArgs !== undefined && rawArgs !== null) {
    problems.push({ key: "args", message: "dfc.args must be an array of strings; using no extra arguments." });
  }

  const rawTrace = config.get("trace.server");
  let trace: TraceLevel = DEFAULTS.trace;
  if (TRACE_LEVELS.includes(rawTrace as TraceLevel)) {
    trace = rawTrace as TraceLevel;
  } else if (rawTrace !== undefined && rawTrace !== null) {
    problems.push({ key: "trace.server", message: `dfc.trace.server must be one of ${TRACE_LEVELS.join(", ")}; using "off".` });
  }

  const rawDebounce = config.get("debounceMs");
  let debounceMs = DEFAULTS.debounceMs;
  if (typeof rawDebounce === "number" && Number.isInteger(rawDebounce) && rawDebounce >= 0 && rawDebounce <= 10000) {
    debounceMs = rawDebounce;
  } else if (rawDebounce !== undefined && rawDebounce !== null) {
    problems.push({ key: "debounceMs", message: `dfc.debounceMs must be a whole number from 0 to 10000; using ${DEFAULTS.debounceMs}.` });
  }

  const path = expand(str("path", DEFAULTS.path), expansions) || DEFAULTS.path;
  const interpreter = expand(str("interpreter", DEFAULTS.interpreter), expansions);
  const dsn = str("dsn", DEFAULTS.dsn);
  return { settings: { path, interpreter, args, dsn, debounceMs, trace }, problems };
}

/** Expands a leading `~` and every `${workspaceFolder}`; other text is kept as written. */
export function expand(value: string, expansions: Expansions): string {
  let result = value;
  if (expansions.workspaceFolder !== undefined) {
    result = result.split("${workspaceFolder}").join(expansions.workspaceFolder);
  }
  if (expansions.home !== undefined && (result === "~" || result.startsWith("~/") || result.startsWith("~\\"))) {
    result = expansions.home + result.slice(1);
  }
  return result;
}

/** The command line that starts the language server over stdio. */
export function serverCommand(settings: Settings): { command: string; args: string[] } {
  if (settings.interpreter !== "") {
    return { command: settings.interpreter, args: ["-m", "dfc", "lsp", ...settings.args] };
  }
  return { command: settings.path, args: ["lsp", ...settings.args] };
}

/**
 * What the server receives as `initializationOptions`. `dsn` is null when no database is
 * configured, so the server can tell "not set" from a malformed value. The server also
 * advertises the `dfc.refreshSchema` command; the language client registers it in VS Code.
 */
export function initializationOptions(settings: Settings): { dsn: string | null; debounceMs: number } {
  return { dsn: settings.dsn === "" ? null : settings.dsn, debounceMs: settings.debounceMs };
}

/** True when going from `before` to `after` needs a new server process. */
export function needsRestart(before: Settings, after: Settings): boolean {
  return RESTART_KEYS.some((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
}

/** Reads the settings for the first workspace folder (or the user settings without one). */
export function readSettings(workspace: typeof vscode.workspace, home: string | undefined): ParsedSettings {
  const folder = workspace.workspaceFolders?.[0];
  const config = workspace.getConfiguration(SECTION, folder?.uri);
  return parseSettings(config, { workspaceFolder: folder?.uri.fsPath, home });
}
