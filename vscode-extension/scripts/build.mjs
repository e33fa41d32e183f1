/**
 * The extension's build: the TextMate grammar (YAML + catalogue -> JSON), then the extension
 * bundle (src/extension.ts -> dist/extension.js) with esbuild.
 *
 *   node scripts/build.mjs            grammar + bundle
 *   node scripts/build.mjs --watch    the same, rebuilt on every change
 *   node scripts/build.mjs --tests    grammar + unit tests (test/unit/*.test.ts -> out/test/)
 *   node scripts/build.mjs --minify   a minified bundle, for packaging
 */
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { writeGrammar } from "./grammar.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));

const common = {
  bundle: true,
  platform: "node",
  target: "node18",
  format: "cjs",
  sourcemap: !args.has("--minify"),
  minify: args.has("--minify"),
  logLevel: "warning",
  // The editor provides `vscode` at run time; everything else is bundled.
  external: ["vscode"],
};

function grammar() {
  const groups = writeGrammar();
  const summary = Object.entries(groups)
    .map(([key, names]) => `${key}=${names.length}`)
    .join(" ");
  console.log(`grammar: syntaxes/dsql.tmLanguage.json (${summary})`);
}

function extensionOptions() {
  return {
    ...common,
    entryPoints: [path.join(root, "src", "extension.ts")],
    outfile: path.join(root, "dist", "extension.js"),
  };
}

function testOptions() {
  const dir = path.join(root, "test", "unit");
  const entryPoints = readdirSync(dir)
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => path.join(dir, name));
  rmSync(path.join(root, "out", "test"), { recursive: true, force: true });
  return { ...common, sourcemap: true, minify: false, entryPoints, outdir: path.join(root, "out", "test") };
}

/**
 * vscode-languageclient kills a server that outlives its shutdown with a shell script it looks
 * for next to its own code; once bundled, that is next to dist/extension.js.
 */
function copyTerminateScript() {
  const require = createRequire(import.meta.url);
  const source = path.join(path.dirname(require.resolve("vscode-languageclient/node")), "lib", "node", "terminateProcess.sh");
  const target = path.join(root, "dist", "terminateProcess.sh");
  mkdirSync(path.dirname(target), { recursive: true });
  copyFileSync(source, target);
  chmodSync(target, 0o755);
}

async function main() {
  grammar();
  if (args.has("--tests")) {
    await esbuild.build(testOptions());
    console.log("tests: out/test/");
    return;
  }
  if (args.has("--watch")) {
    const context = await esbuild.context(extensionOptions());
    await context.watch();
    console.log("watching src/ (the grammar is rebuilt by restarting this command)");
    return;
  }
  await esbuild.build(extensionOptions());
  copyTerminateScript();
  console.log("bundle: dist/extension.js");
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
