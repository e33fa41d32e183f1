/**
 * Every snippet, expanded with its default placeholder values, must be well-formed dsql as far
 * as the grammar can tell: no unknown operator token, no string or comment left open at the end,
 * and each SQL step highlighted as embedded SQL. A snippet with an unbalanced quote or a missing
 * space between operators fails here rather than in a user's editor.
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, it, before } from "node:test";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const textmate = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const snippets = JSON.parse(readFileSync(path.join(root, "snippets", "dsql.json"), "utf8"));

/** Expands TextMate snippet syntax the way an editor would if the user accepted every default. */
export function expandSnippet(body, variables = { TM_FILENAME_BASE: "example" }) {
  const values = new Map();
  let pos = 0;
  const text = body;

  function parse(stopAt) {
    let out = "";
    while (pos < text.length) {
      const ch = text[pos];
      if (stopAt && ch === stopAt) return out;
      if (ch === "\\" && pos + 1 < text.length) {
        out += text[pos + 1];
        pos += 2;
      } else if (ch === "$") {
        out += parseDollar();
      } else {
        out += ch;
        pos += 1;
      }
    }
    assert.ok(!stopAt, `unterminated \${ in snippet: ${body}`);
    return out;
  }

  function parseDollar() {
    pos += 1; // $
    const simple = /^(\d+|[A-Z_]+)/.exec(text.slice(pos));
    if (simple) {
      pos += simple[0].length;
      return lookup(simple[0], "");
    }
    assert.equal(text[pos], "{", `bare $ in snippet (write \\$ for a literal one): ${body}`);
    pos += 1;
    const name = /^(\d+|[A-Z_]+)/.exec(text.slice(pos))[0];
    pos += name.length;
    let value = "";
    if (text[pos] === ":") {
      pos += 1;
      value = parse("}");
    } else if (text[pos] === "|") {
      const end = text.indexOf("|}", pos);
      value = text.slice(pos + 1, end).split(",")[0];
      pos = end + 1;
    }
    assert.equal(text[pos], "}", `unterminated \${${name} in snippet: ${body}`);
    pos += 1;
    return lookup(name, value);
  }

  function lookup(name, value) {
    if (/^\d+$/.test(name)) {
      if (!values.has(name) || value !== "") values.set(name, value || values.get(name) || "");
      return values.get(name);
    }
    return name in variables ? variables[name] : value;
  }

  // Mirrors ($2 after ${2:order}) take the value of the first definition.
  const expanded = parse(undefined);
  return expanded;
}

let grammar;

before(async () => {
  const wasm = readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const files = {
    "source.dsql": path.join(root, "syntaxes", "dsql.tmLanguage.json"),
    "source.sql": path.join(root, "test", "source.sql.tmLanguage.json"),
  };
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) => {
      const file = files[scopeName];
      return file ? textmate.parseRawGrammar(readFileSync(file, "utf8"), file) : null;
    },
  });
  grammar = await registry.loadGrammar("source.dsql");
});

/** Tokenizes text; returns its tokens and the scopes still open at the very end. */
function tokenize(text) {
  let stack = textmate.INITIAL;
  const tokens = [];
  for (const line of text.split("\n")) {
    const result = grammar.tokenizeLine(line, stack);
    for (const token of result.tokens) {
      tokens.push({ text: line.slice(token.startIndex, token.endIndex), scopes: token.scopes });
    }
    stack = result.ruleStack;
  }
  // A probe after the text shows which regions are still open.
  const probe = grammar.tokenizeLine("x", stack).tokens[0].scopes;
  return { tokens, open: probe };
}

describe("expandSnippet", () => {
  it("takes defaults, mirrors, choices, variables and escapes", () => {
    assert.equal(
      expandSnippet("'${1:a}' |=> '${2:n}' ~> '\\$$2' ${3|GET,POST|} ${TM_FILENAME_BASE} $0"),
      "'a' |=> 'n' ~> '$n' GET example ",
    );
  });
});

describe("snippets", () => {
  for (const [title, snippet] of Object.entries(snippets)) {
    it(`${title} expands to well-formed dsql`, () => {
      const body = Array.isArray(snippet.body) ? snippet.body.join("\n") : snippet.body;
      const text = expandSnippet(body);
      const { tokens, open } = tokenize(text);
      const invalid = tokens.filter((t) => t.scopes.some((s) => s.startsWith("invalid")));
      assert.deepEqual(invalid.map((t) => t.text), [], `unknown operator in:\n${text}`);
      assert.deepEqual(open, ["source.dsql"], `something is left open at the end of:\n${text}`);
      const sql = tokens.filter((t) => t.scopes.includes("meta.embedded.block.sql"));
      if (snippet.prefix.includes("setvar")) {
        assert.equal(sql.length, 0, "df.setvar's arguments are values, not SQL");
      } else {
        assert.ok(sql.length > 0, `no SQL step in:\n${text}`);
      }
    });
  }
});
