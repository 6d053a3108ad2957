// Anyone who can write the shared team folder can write team.json: one nested a million levels
// deep must be refused as invalid, not overflow the stack of the code that checks it.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ConfigError, loadConfigFile } from "../../../server/config/load";
import { duplicateKeys } from "../../../server/config/duplicateKeys";
import { parseTeamFileText } from "../../../server/team/teamConfig";

const deep = (n: number, inner = "") => "[".repeat(n) + inner + "]".repeat(n);

describe("config: keys set twice, in documents of any depth", () => {
  it("names each key set twice by its path, in objects and arrays, escapes read as JSON reads them", () => {
    assert.deepEqual(duplicateKeys('{"caps": [{"id": "a", "i\\u0064": "b"}], "x": {"y": 1, "z": [0, {"k": 1, "k": 2}]}, "caps": []}'), ["caps[0].id", "x.z[1].k", "caps"]);
    assert.deepEqual(duplicateKeys('[{"a": 1}, {"a": 2}]'), [], "one key in each of two objects");
  });

  it("a team.json nested 500,000 levels deep is invalid, said so, not a stack overflow", () => {
    const r = parseTeamFileText(`{"caps": ${deep(500_000)}}`);
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.errors.join("\n"), /^caps\[0\]: /m);
    const twice = parseTeamFileText(`{"members": ${deep(500_000, "1")}, "caps": [], "caps": []}`);
    assert.deepEqual(twice.ok ? [] : twice.errors, ["caps: set twice; JSON keeps only the last, so the first would be dropped without a word. Keep one"]);
  });

  it("a config file nested 500,000 levels deep is a ConfigError naming the key", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "bb-deep-config-"));
    try {
      const file = path.join(dir, "config.json");
      await writeFile(file, `{"caps": ${deep(500_000)}}`, { mode: 0o600 });
      const err = await loadConfigFile(file).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
      assert.match(err.problems.join("\n"), /^caps\[0\]: /m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("config: keys set twice under a huge key", () => {
  it("a team.json under the 1 MiB limit setting a key 100,000 times under a 200,000-character key: the first 10 are named, each path short (the heap ran out building them all)", () => {
    const key = "x".repeat(200_000);
    const text = `{"members": {"${key}": {${Array.from({ length: 100_000 }, () => '"a":1').join(",")}}}}`;
    assert.ok(text.length < 1024 * 1024);
    const r = parseTeamFileText(text);
    const errors = r.ok ? [] : r.errors;
    assert.equal(errors.length, 10);
    assert.equal(errors[0], `members.${"x".repeat(100)}….a: set twice; JSON keeps only the last, so the first would be dropped without a word. Keep one`);
  });
});
