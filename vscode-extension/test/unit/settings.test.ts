/**
 * Unit tests for the settings module: type checking with fallbacks, path expansion, the server
 * command line and the initializationOptions the server receives.
 */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import {
  DEFAULTS,
  expand,
  initializationOptions,
  needsRestart,
  parseSettings,
  serverCommand,
  type ConfigurationReader,
} from "../../src/settings";

function config(values: Record<string, unknown>): ConfigurationReader {
  return { get: (key: string) => values[key] };
}

describe("parseSettings", () => {
  it("returns the defaults for an empty configuration", () => {
    const { settings, problems } = parseSettings(config({}));
    assert.deepEqual(settings, DEFAULTS);
    assert.deepEqual(problems, []);
  });

  it("reads every setting", () => {
    const { settings, problems } = parseSettings(
      config({
        path: "/opt/dfc/bin/dfc",
        interpreter: "",
        args: ["--log-level", "debug"],
        dsn: "postgresql://app@localhost/app",
        debounceMs: 150,
        "trace.server": "verbose",
      }),
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(settings, {
      path: "/opt/dfc/bin/dfc",
      interpreter: "",
      args: ["--log-level", "debug"],
      dsn: "postgresql://app@localhost/app",
      debounceMs: 150,
      trace: "verbose",
    });
  });

  it("falls back to defaults for values of the wrong type and says which", () => {
    const { settings, problems } = parseSettings(
      config({ path: 42, args: "--verbose", dsn: ["x"], debounceMs: -1, "trace.server": "loud" }),
    );
    assert.deepEqual(settings, DEFAULTS);
    assert.deepEqual(
      problems.map((p) => p.key),
      ["args", "trace.server", "debounceMs", "path", "dsn"],
    );
    for (const problem of problems) assert.match(problem.message, /^dfc\.\S+ must be/);
  });

  it("treats a blank path as the default executable", () => {
    assert.equal(parseSettings(config({ path: "   " })).settings.path, "dfc");
  });

  it("expands ${workspaceFolder} and ~ in path, interpreter and args", () => {
    const { settings } = parseSettings(
      config({
        path: "~/bin/dfc",
        interpreter: "${workspaceFolder}/.venv/bin/python",
        args: ["--cache=${workspaceFolder}/.dfc"],
      }),
      { workspaceFolder: "/src/app", home: "/home/ana" },
    );
    assert.equal(settings.path, "/home/ana/bin/dfc");
    assert.equal(settings.interpreter, "/src/app/.venv/bin/python");
    assert.deepEqual(settings.args, ["--cache=/src/app/.dfc"]);
  });
});

describe("expand", () => {
  it("leaves text without variables alone", () => {
    assert.equal(expand("dfc", { workspaceFolder: "/w", home: "/h" }), "dfc");
  });

  it("expands ~ only at the start", () => {
    assert.equal(expand("a/~/b", { home: "/h" }), "a/~/b");
    assert.equal(expand("~", { home: "/h" }), "/h");
  });

  it("keeps ${workspaceFolder} when there is no folder", () => {
    assert.equal(expand("${workspaceFolder}/x", {}), "${workspaceFolder}/x");
  });
});

describe("serverCommand", () => {
  it("runs `dfc lsp` with the extra arguments", () => {
    assert.deepEqual(serverCommand({ ...DEFAULTS, args: ["--verbose"] }), {
      command: "dfc",
      args: ["lsp", "--verbose"],
    });
  });

  it("runs `<interpreter> -m dfc lsp` when an interpreter is set, ignoring the path", () => {
    assert.deepEqual(
      serverCommand({ ...DEFAULTS, path: "/ignored/dfc", interpreter: "/venv/bin/python", args: ["-v"] }),
      { command: "/venv/bin/python", args: ["-m", "dfc", "lsp", "-v"] },
    );
  });
});

describe("initializationOptions", () => {
  it("passes the DSN", () => {
    assert.deepEqual(initializationOptions({ ...DEFAULTS, dsn: "postgresql:///app" }), {
      dsn: "postgresql:///app",
      debounceMs: 20,
    });
  });

  it("passes null when no DSN is set", () => {
    assert.deepEqual(initializationOptions(DEFAULTS), { dsn: null, debounceMs: 20 });
  });
});

describe("needsRestart", () => {
  it("restarts for a new DSN or new arguments", () => {
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, dsn: "postgresql:///x" }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, args: ["-v"] }), true);
  });

  it("does not restart for a trace level change, which the client applies live", () => {
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, trace: "verbose" }), false);
  });
});
