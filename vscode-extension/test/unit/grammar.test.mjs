/**
 * Unit tests for the grammar build: the catalogue decides which df.* functions exist and how
 * their string arguments are highlighted, and the generated grammar keeps no placeholder.
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { buildGrammar, classify, paths } from "../../scripts/grammar.mjs";

const catalogue = JSON.parse(readFileSync(paths.catalogue, "utf8"));
const yamlText = readFileSync(paths.yaml, "utf8");

const fn = (name, ...types) => ({ name, params: types.map((type, i) => ({ name: `p${i}`, type })) });

describe("classify", () => {
  it("sorts functions by the shape of their arguments", () => {
    const groups = classify({
      functions: [
        fn("seq", "step", "step"),
        fn("sleep", "integer"),
        fn("start", "step", "text", "text"),
        fn("as", "step", "name"),
        fn("if_rows", "name", "step", "step"),
        fn("clearvars"),
        fn("odd", "step", "text", "step"),
      ],
    });
    assert.deepEqual(groups, {
      functions: ["seq", "sleep", "start", "as", "if_rows", "clearvars", "odd"],
      text_functions: ["sleep", "clearvars"],
      step_then_text_functions: ["start"],
      step_then_name_functions: ["as"],
      name_then_step_functions: ["if_rows"],
    });
  });

  it("lists every catalogue function exactly once in `functions`", () => {
    const names = catalogue.functions.map((f) => f.name);
    assert.deepEqual(classify(catalogue).functions, names);
  });
});

describe("buildGrammar", () => {
  const { grammar } = buildGrammar(yamlText, catalogue);
  const text = JSON.stringify(grammar);

  it("fills every placeholder", () => {
    assert.doesNotMatch(text, /\{\{\w+\}\}/);
  });

  it("names each catalogue function in the df.* call patterns", () => {
    const callPatterns = grammar.repository["df-calls"].patterns.map((p) => p.begin ?? p.match);
    const all = callPatterns.at(-1);
    for (const { name } of catalogue.functions) {
      assert.ok(all.includes(name), `${name} missing from ${all}`);
    }
  });

  it("rejects a grammar that names an unknown function list", () => {
    assert.throws(() => buildGrammar("patterns:\n  - match: '{{nope}}'\n", catalogue), /unknown function list \{\{nope\}\}/);
  });
});
