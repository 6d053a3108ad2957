import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ConfigError, loadConfigFile } from "../../../server/config/load";

describe("config: loadConfigFile", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bedrock-budget-config-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function loadError(file: string): Promise<ConfigError> {
    try {
      await loadConfigFile(file);
    } catch (err) {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
      return err;
    }
    assert.fail("expected loadConfigFile to throw");
  }

  it("loads a valid file and applies the defaults", async () => {
    const file = path.join(dir, "ok.json");
    await writeFile(file, JSON.stringify({ caps: [{ id: "daily", window: "day", limitUsd: 10 }], region: "eu-west-1" }));
    const config = await loadConfigFile(file);
    assert.equal(config.region, "eu-west-1");
    assert.deepEqual(config.caps, [{ id: "daily", scope: "personal", window: "day", limitUsd: 10 }]);
    assert.equal(config.port, 8777);
  });

  it("reports a missing file, naming it and the reason", async () => {
    const file = path.join(dir, "absent.json");
    const err = await loadError(file);
    assert.equal(err.source, file);
    assert.deepEqual(err.problems, ["cannot read the file (ENOENT)"]);
    assert.ok(err.message.includes(file));
    assert.ok(err.message.includes("ENOENT"));
  });

  it("reports invalid JSON", async () => {
    const file = path.join(dir, "broken.json");
    await writeFile(file, '{ "caps": [ { "window": "day", } ] ');
    const err = await loadError(file);
    assert.equal(err.problems.length, 1);
    assert.match(err.problems[0]!, /^not valid JSON: /);
  });

  it("lists every invalid key as a problem, each with its path", async () => {
    const file = path.join(dir, "bad.json");
    await writeFile(file, JSON.stringify({ port: "8777", caps: [{ window: "day", limitUsd: 1 }, { window: "day", limitUsd: -1 }], colour: "blue" }));
    const err = await loadError(file);
    assert.equal(err.problems.length, 3, err.problems.join("\n"));
    assert.ok(err.problems.some((p) => p.startsWith("port: ")));
    assert.ok(err.problems.some((p) => p.startsWith("caps[1].limitUsd: ")));
    assert.ok(err.problems.some((p) => p.includes("colour")));
    for (const p of err.problems) assert.ok(err.message.includes(`  - ${p}`), "the message lists each problem");
  });
});
