/** Settings checked key by key: a bad harmless value is ignored and named, a bad money value blocks. */
import assert from "node:assert/strict";
import { configFromSettings } from "../../../server/config/fromSettings";
import { configSchema, parseConfig } from "../../../server/config/schema";
import { blockedMessage, checkSettings, decidesMoney, HARMLESS_KEYS } from "../../../server/config/settingsCheck";
import { settingsContribution, untrustedWorkspaces } from "../../../scripts/settingsContribution";

const good = { caps: [{ id: "daily", window: "day", limitUsd: 5 }], upstreamEndpoint: "http://127.0.0.1:9000", logLevel: "debug" };
const lastGood = () => {
  const result = parseConfig(good);
  assert.ok(result.ok);
  return result.config;
};

describe("config: settings checked key by key", () => {
  it("ignores a bad value of a harmless key, naming the setting, and keeps every other key", () => {
    const check = configFromSettings({ ...good, logLevel: "verbose" });
    assert.deepEqual(check.errors.length, 1);
    assert.match(check.errors[0]!, /^bedrockBudget\.logLevel: /);
    assert.deepEqual(check.blocking, [], "a harmless key blocks nothing");
    assert.deepEqual(check.config.caps, [{ id: "daily", scope: "personal", window: "day", limitUsd: 5 }]);
    assert.equal(check.config.upstreamEndpoint, "http://127.0.0.1:9000");
    assert.equal(check.config.logLevel, "info", "the default applies without a last good value");
    assert.equal(configFromSettings({ ...good, logLevel: "verbose" }, lastGood()).config.logLevel, "debug", "else the last good value");
  });

  it("blocks on a bad value of a key that decides money, naming the setting, and keeps the last good value", () => {
    const check = configFromSettings({ ...good, caps: [{ id: "daily", window: "day", limitUsd: -1 }] }, lastGood());
    assert.equal(check.blocking.length, 1);
    assert.match(check.blocking[0]!, /^bedrockBudget\.caps\[0\]\.limitUsd: /);
    assert.deepEqual(check.errors, check.blocking);
    assert.equal(check.config.caps[0]!.limitUsd, 5);
  });

  it("blocks on two caps with one id, and on each money key", () => {
    assert.match(configFromSettings({ caps: [{ id: "a", window: "day", limitUsd: 1 }, { id: "a", window: "week", limitUsd: 2 }] }).blocking[0]!, /^bedrockBudget\.caps: two caps have the id "a"/);
    for (const [key, value] of [["port", 70000], ["region", "mars"], ["ledgerDir", 3], ["teamUnavailable", "maybe"], ["whenGatewayDown", "sometimes"], ["allowUnmeteredOperations", "yes"]] as const) {
      const check = configFromSettings({ [key]: value });
      assert.equal(check.blocking.length, 1, key);
      assert.match(check.blocking[0]!, new RegExp(`^bedrockBudget\\.${key}: `), key);
    }
  });

  it("reports an unknown key by name and blocks: it may be a misspelt money key, whose default (no caps) must not apply", () => {
    const check = configFromSettings({ ...good, capz: [] });
    assert.match(check.errors[0]!, /^bedrockBudget\.capz: not a Bedrock Budget setting/);
    assert.deepEqual(check.blocking, check.errors);
    const misspelt = checkSettings({ Caps: [{ id: "daily", window: "day", limitUsd: 5 }] }, undefined);
    assert.match(misspelt.blocking.join(), /^Caps: not a Bedrock Budget setting/);
    // Names every object inherits are not settings either (an `in` test took them for known keys).
    for (const key of ["constructor", "toString", "__proto__"]) {
      const inherited = checkSettings(JSON.parse(`{"${key}": {"caps": []}, "timeZone": "UTC"}`), undefined);
      assert.match(inherited.blocking.join(), new RegExp(`^${key}: not a Bedrock Budget setting`), key);
    }
  });

  it("a document of null is not settings (it blocks); an editor's absent section is no settings", () => {
    assert.match(checkSettings(null, undefined).blocking.join(), /expected an object of settings, not null/);
    assert.deepEqual(configFromSettings(null).errors, []);
  });

  it("treats cleared values (null, empty string) as unset", () => {
    const check = configFromSettings({ region: "", awsProfile: null, caps: [] });
    assert.deepEqual(check.errors, []);
  });

  it("classifies every key: only the window-scoped display keys are harmless, any other key decides money", () => {
    assert.deepEqual([...HARMLESS_KEYS].sort(), ["codeLens", "logLevel", "warnMissingMaxTokens", "warnOverCap"]);
    for (const key of HARMLESS_KEYS) assert.ok(key in configSchema.shape, `${key} is a config key`);
    for (const key of ["caps", "pricing", "guardrailPricing", "upstreamEndpoint", "region", "awsProfile", "ledgerDir", "port", "user", "timeZone", "teamLedger", "team", "teamUnavailable", "allowUnmeteredOperations", "maxRequestBytes", "allowApiKeys", "whenGatewayDown"]) {
      assert.ok(decidesMoney(key), key);
    }
  });

  it("keeps the alert channels (where alerts, naming caps and spend, leave the machine) out of a workspace's reach, and blocks on a bad one", () => {
    const properties = settingsContribution().properties as Record<string, { scope: string }>;
    // alertThresholds too: a repository's `[]` would silence the channels the user set.
    for (const key of ["alertWebhook", "alertSnsTopicArn", "alertThresholds"]) {
      assert.ok(decidesMoney(key), key);
      assert.equal(properties[`bedrockBudget.${key}`]?.scope, "machine", `${key}: user settings only, never a repository's .vscode/settings.json`);
      assert.ok(untrustedWorkspaces().restrictedConfigurations.includes(`bedrockBudget.${key}`), `${key}: ignored in Restricted Mode`);
    }
    const ok = configFromSettings({ alertWebhook: "https://hooks.slack.com/services/T0/B0/x", alertSnsTopicArn: "arn:aws:sns:eu-west-1:123456789012:budget-alerts" });
    assert.deepEqual(ok.errors, []);
    assert.equal(ok.config.alertWebhook, "https://hooks.slack.com/services/T0/B0/x");
    assert.deepEqual(configFromSettings({ alertWebhook: "http://127.0.0.1:9000/hook" }).errors, [], "http:// to a loopback receiver is allowed");
    for (const [key, value] of [["alertWebhook", "http://hooks.example.com/x"], ["alertWebhook", "ftp://example.com/"], ["alertSnsTopicArn", "arn:aws:sqs:us-east-1:123456789012:q"]] as const) {
      const check = configFromSettings({ [key]: value });
      assert.equal(check.blocking.length, 1, `${key}=${value} blocks`);
      assert.match(check.blocking[0]!, new RegExp(`^bedrockBudget\\.${key}: `));
    }
    // fetch refuses a URL with credentials: every alert would fail, and print the password.
    const withPassword = configFromSettings({ alertWebhook: "https://alice:s3cr3t-pw@hooks.example.com/hook" });
    assert.match(withPassword.blocking.join(), /^bedrockBudget\.alertWebhook: holds a user name or password/);
    assert.doesNotMatch(withPassword.blocking.join(), /s3cr3t/, "the refusal does not print it either");
  });

  it("says in the refusal which setting is wrong, what is wrong, and how to fix it", () => {
    const message = blockedMessage(["bedrockBudget.port: Too big: expected number to be <=65535"], "Correct it in your user settings.");
    assert.match(message, /bedrockBudget\.port: Too big/);
    assert.match(message, /refuses Bedrock calls until this setting is fixed/);
    assert.match(message, /Correct it in your user settings\.$/);
  });

  it("usage plans decide money: rateLimit, tiers and callers are machine-scoped (a workspace cannot set them, not even to loosen a plan), and a bad value blocks", () => {
    for (const key of ["rateLimit", "tiers", "callers"]) assert.ok(decidesMoney(key), key);
    const properties = settingsContribution().properties as Record<string, { scope: string }>;
    for (const key of ["rateLimit", "tiers", "callers"]) assert.equal(properties[`bedrockBudget.${key}`]!.scope, "machine", key);
    const check = configFromSettings({ rateLimit: { requestsPerSecond: -1 }, callers: { "agent-1": "gold" }, tiers: { silver: {} } });
    assert.deepEqual(check.blocking.map((b) => b.split(":")[0]), ["bedrockBudget.rateLimit.requestsPerSecond", "bedrockBudget.callers.agent-1"]);
    assert.match(check.blocking[1]!, /names tier "gold", which is not a key of tiers/);
    assert.equal(check.config.callers, undefined, "no guessed tier");
  });

  it("refuses a tier cap that names its own callers, a burst without a rate, and two caps of one id in a tier", () => {
    const bad = parseConfig({
      rateLimit: { burst: 5 },
      tiers: { pro: { caps: [{ window: "day", limitUsd: 1, callers: ["x"] }] } },
    });
    assert.equal(bad.ok, false);
    const errors = bad.ok ? [] : bad.errors;
    assert.ok(errors.some((e) => /^rateLimit\.burst: burst needs requestsPerSecond/.test(e)), errors.join("\n"));
    assert.ok(errors.some((e) => /^tiers\.pro\.caps\[0\]\.callers: a tier cap applies to each caller/.test(e)), errors.join("\n"));
    const dup = parseConfig({ tiers: { basic: { caps: [{ id: "a", window: "day", limitUsd: 1 }, { id: "a", window: "month", limitUsd: 2 }] } } });
    assert.deepEqual(dup.ok ? [] : dup.errors, ['tiers.basic.caps: two caps have the id "a"']);
  });

  it("accepts caps scoped to callers and tags", () => {
    const ok = parseConfig({ caps: [{ window: "day", limitUsd: 5, callers: ["AKIASTAGING", "staging"], tags: { project: "chatbot" } }] });
    assert.equal(ok.ok, true);
  });
});
