/** What the server is told the settings are: a repository's workspace settings reach no key that decides money. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { answerItem, registeredSettings, trustedSettings, type SettingsReader } from "../../../client/settingsModel";
import { configFromSettings } from "../../../server/config/fromSettings";
import { configSchema } from "../../../server/config/schema";
import { HARMLESS_KEYS } from "../../../server/config/settingsCheck";
import { PriceBook } from "../../../server/metering/prices";

const pkg = JSON.parse(readFileSync(path.join(__dirname, "../../../package.json"), "utf8"));
const properties = pkg.contributes.configuration.properties as Record<string, { scope?: string; default?: unknown }>;
const registered = registeredSettings(pkg);
const OPUS = "anthropic.claude-opus-4-1-20250805-v1:0";

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => v !== null && typeof v === "object" && !Array.isArray(v);

function merge(a: unknown, b: unknown): unknown {
  if (!isTree(a) || !isTree(b)) return b;
  const out: Tree = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = merge(out[k], v);
  return out;
}

/** A settings.json's keys split on "." into a value tree, as VS Code's configuration model does. */
function tree(flat: Tree): Tree {
  let out: Tree = {};
  for (const [key, value] of Object.entries(flat)) {
    const nested = key.split(".").reduceRight<unknown>((inner, part) => ({ [part]: inner }), value);
    out = merge(out, nested) as Tree;
  }
  return out;
}

/**
 * VS Code's layers as it keeps them: a workspace's value of a *registered* machine-scoped key is
 * dropped; any other workspace key (unregistered dotted sub-keys included) is kept and merged.
 */
function vscodeLike(user: Tree, workspace: Tree): SettingsReader & { mergedSection(): unknown } {
  const defaults = tree(Object.fromEntries(Object.entries(properties).filter(([, p]) => p.default !== undefined).map(([k, p]) => [k, p.default])));
  const userTree = tree(user);
  const kept = Object.fromEntries(Object.entries(workspace).filter(([k]) => properties[k]?.scope !== "machine"));
  const merged = merge(merge(defaults, userTree), tree(kept)) as Tree;
  const at = (t: Tree, key: string) => (t.bedrockBudget as Tree | undefined)?.[key];
  return {
    inspect: (key) => ({ defaultValue: at(defaults, key), globalValue: at(userTree, key) }),
    get: (key) => at(merged, key),
    keys: () => Object.keys((merged.bedrockBudget as Tree | undefined) ?? {}),
    mergedSection: () => merged.bedrockBudget,
  };
}

const USER = { "bedrockBudget.caps": [{ window: "day", limitUsd: 5 }], "bedrockBudget.pricing": { "my.model-*": { inputPer1M: 3, outputPer1M: 15 } } };
/** The reviewer's repository: unregistered dotted sub-keys of every object setting that decides money. */
const ATTACK = {
  "bedrockBudget.pricing.*": { inputPer1M: 0, outputPer1M: 0 },
  "bedrockBudget.guardrailPricing.contentPolicy": 0,
  "bedrockBudget.rateLimit.requestsPerSecond": 100000,
  "bedrockBudget.tags.project": "someone-else",
  "bedrockBudget.callers.AKIAEXAMPLE": "free",
  "bedrockBudget.tiers.free.rateLimit.requestsPerDay": 1000000,
  "bedrockBudget.caps.x": 1,
  "bedrockBudget.alertThresholds": [],
  "bedrockBudget": { allowApiKeys: true },
};

describe("settings the server is given", () => {
  it("(the premise) VS Code's merged section carries a repository's dotted sub-keys into the user's objects", () => {
    const section = vscodeLike(USER, ATTACK).mergedSection() as Tree;
    assert.deepEqual((section.pricing as Tree)["*"], { inputPer1M: 0, outputPer1M: 0 });
    assert.deepEqual(section.caps, { x: 1 });
  });

  it("keep a repository's `pricing.*` at $0 out: the user's prices and the built-in table still price every call", () => {
    const reader = vscodeLike(USER, { "bedrockBudget.pricing.*": { inputPer1M: 0, outputPer1M: 0 }, "bedrockBudget.pricing": { "*": { inputPer1M: 0, outputPer1M: 0 } } });
    const section = trustedSettings(registered, reader);
    assert.deepEqual(section.pricing, USER["bedrockBudget.pricing"], "the user's own pricing, nothing added");
    const check = configFromSettings(section);
    assert.deepEqual(check.errors, []);
    const rates = new PriceBook(check.config.pricing).rates(OPUS);
    assert.deepEqual([rates.input, rates.output], [new PriceBook({}).rates(OPUS).input, new PriceBook({}).rates(OPUS).output]);
    assert.ok(rates.input > 0 && rates.output > 0, "Opus is not free");
  });

  it("give every machine-scoped key the user's value (or its default) whatever the repository sets", () => {
    const attacked = trustedSettings(registered, vscodeLike(USER, ATTACK));
    assert.deepEqual(attacked, trustedSettings(registered, vscodeLike(USER, {})));
    assert.deepEqual(attacked.caps, USER["bedrockBudget.caps"]);
    for (const key of ["rateLimit", "guardrailPricing", "tags", "callers", "tiers"]) assert.equal(attacked[key], undefined, key);
    assert.deepEqual(attacked.alertThresholds, [50, 80, 90, 100], "a repository's [] does not silence alerts");
    assert.equal(attacked.allowApiKeys, false);
    assert.equal(attacked.port, 8777);
    assert.deepEqual(configFromSettings(attacked).blocking, [], "the gateway serves with the user's caps");
  });

  it("keep a repository's value of a harmless (window-scoped) key", () => {
    const section = trustedSettings(registered, vscodeLike(USER, { "bedrockBudget.logLevel": "debug", "bedrockBudget.codeLens": false }));
    assert.equal(section.logLevel, "debug");
    assert.equal(section.codeLens, false);
  });

  it("pass a key the user's own settings set though no setting has that name, so the server names it and blocks; never a repository's", () => {
    // Dropped here, a misspelt `bedrockBudget.cap` left the user without the caps it meant, without a word.
    const section = trustedSettings(registered, vscodeLike({ ...USER, "bedrockBudget.cap": [{ window: "day", limitUsd: 5 }] }, { "bedrockBudget.somethingNew": 1 }));
    assert.deepEqual(section.cap, [{ window: "day", limitUsd: 5 }]);
    assert.equal(section.somethingNew, undefined, "a repository cannot make the gateway refuse calls");
    for (const key of Object.keys(section)) assert.ok(key === "cap" || key in configSchema.shape, key);
    assert.match(configFromSettings(section).blocking.join(), /^bedrockBudget\.cap: not a Bedrock Budget setting \(misspelt\?\)/);
  });

  it("take the keys and scopes from package.json, generated from the one schema: only HARMLESS_KEYS are open to a workspace", () => {
    assert.deepEqual(registered.map((s) => s.key).sort(), Object.keys(configSchema.shape).sort());
    assert.deepEqual(registered.filter((s) => s.workspaceMay).map((s) => s.key).sort(), [...HARMLESS_KEYS].sort());
    const unscoped = registeredSettings({ contributes: { configuration: { properties: { "bedrockBudget.x": {}, "other.y": { scope: "window" } } } } });
    assert.deepEqual(unscoped, [{ key: "x", workspaceMay: false }], "no declared scope: user settings only");
  });
});

describe("workspace/configuration answers", () => {
  const trusted = () => ({ pricing: { a: 1 }, logLevel: "info" });
  const merged = { pricing: { a: 1, "*": 0 }, logLevel: "info" };

  it("answer our section, a key of it, or the whole configuration from the trusted settings, never VS Code's merged value", () => {
    assert.deepEqual(answerItem("bedrockBudget", merged, trusted), trusted());
    assert.deepEqual(answerItem("bedrockBudget.pricing", merged.pricing, trusted), { a: 1 });
    assert.equal(answerItem("bedrockBudget.pricing.*", 0, trusted), null);
    assert.deepEqual(answerItem(undefined, { editor: { tabSize: 2 }, bedrockBudget: merged }, trusted), { editor: { tabSize: 2 }, bedrockBudget: trusted() });
  });

  it("leave other sections as VS Code answered them", () => {
    assert.deepEqual(answerItem("editor", { tabSize: 2 }, trusted), { tabSize: 2 });
    assert.deepEqual(answerItem("bedrockBudgetX", 1, trusted), 1);
  });
});
