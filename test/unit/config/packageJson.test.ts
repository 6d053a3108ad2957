/** package.json: the settings generated from the config schema, the walkthrough, the Marketplace fields and the VSIX's size. */
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { settingsContribution } from "../../../scripts/settingsContribution";
import { configSchema } from "../../../server/config/schema";

const pkg = JSON.parse(readFileSync(path.join(__dirname, "../../../package.json"), "utf8"));

describe("package.json settings", () => {
  it("match the config schema exactly (run `npm run sync-settings` after changing it)", () => {
    assert.deepEqual(pkg.contributes.configuration, settingsContribution());
  });

  it("offer every config key as bedrockBudget.<key>, with a description", () => {
    const keys = Object.keys(configSchema.shape).map((k) => `bedrockBudget.${k}`).sort();
    const properties = pkg.contributes.configuration.properties as Record<string, { markdownDescription?: string }>;
    assert.deepEqual(Object.keys(properties).sort(), keys);
    for (const [key, property] of Object.entries(properties)) assert.ok(property.markdownDescription, `${key} has a description`);
  });

  it("keep money-deciding settings out of a workspace's reach", () => {
    const properties = pkg.contributes.configuration.properties as Record<string, { scope: string }>;
    for (const key of ["caps", "upstreamEndpoint", "awsProfile", "allowUnmeteredOperations", "whenGatewayDown", "routeTerminals"]) {
      assert.equal(properties[`bedrockBudget.${key}`]!.scope, "machine", key);
    }
  });

  it("ignore a workspace's value of every setting in an untrusted workspace (Restricted Mode)", () => {
    const untrusted = pkg.capabilities?.untrustedWorkspaces as { supported: string; description: string; restrictedConfigurations: string[] } | undefined;
    assert.ok(untrusted, "capabilities.untrustedWorkspaces is declared");
    assert.equal(untrusted.supported, "limited");
    assert.ok(untrusted.description.length > 0);
    const keys = Object.keys(configSchema.shape).map((k) => `bedrockBudget.${k}`).sort();
    assert.deepEqual([...untrusted.restrictedConfigurations].sort(), keys);
  });

  it("accept VS Code 1.100, with types pinned to that minimum", () => {
    assert.equal(pkg.engines.vscode, "^1.100.0");
    assert.match(pkg.devDependencies["@types/vscode"], /^1\.100\./);
  });
});

const ROOT = path.join(__dirname, "../../..");

interface WalkthroughStep {
  id: string;
  description: string;
  media: { markdown?: string; image?: string; svg?: string };
  completionEvents?: string[];
}

describe("package.json walkthrough", () => {
  const walkthroughs = (pkg.contributes.walkthroughs ?? []) as Array<{ id: string; steps: WalkthroughStep[] }>;
  const steps = walkthroughs.flatMap((w) => w.steps);
  const contributed = new Set((pkg.contributes.commands as Array<{ command: string }>).map((c) => c.command));
  const registered = new Set([...readFileSync(path.join(ROOT, "client/extension.ts"), "utf8").matchAll(/registerCommand\("([\w.]+)"/g)].map((m) => m[1]));

  it("takes a newcomer from a cap to a terminal, a first call and the dashboard", () => {
    assert.deepEqual(steps.map((s) => s.id), ["setCap", "openTerminal", "firstCall", "dashboard"]);
  });

  it("has a media file for every step, and the first call's file has snippets for boto3, the JS SDK v3 and the AWS CLI", () => {
    for (const step of steps) {
      const files = Object.values(step.media);
      assert.ok(files.length > 0, `${step.id} has media`);
      for (const file of files) assert.ok(existsSync(path.join(ROOT, file!)), `${step.id}: ${file} exists`);
    }
    const firstCall = readFileSync(path.join(ROOT, steps.find((s) => s.id === "firstCall")!.media.markdown!), "utf8");
    for (const snippet of ["import boto3", "@aws-sdk/client-bedrock-runtime", "aws bedrock-runtime converse"]) assert.ok(firstCall.includes(snippet), snippet);
  });

  it("references only commands the extension contributes and registers", () => {
    const referenced = new Set<string>();
    for (const step of steps) {
      const texts = [step.description, ...Object.values(step.media).filter((f) => f!.endsWith(".md")).map((f) => readFileSync(path.join(ROOT, f!), "utf8"))];
      for (const text of texts) for (const m of text.matchAll(/\(command:([\w.]+)/g)) referenced.add(m[1]!);
      for (const event of step.completionEvents ?? []) if (event.startsWith("onCommand:")) referenced.add(event.slice("onCommand:".length));
    }
    assert.ok(referenced.size >= 4);
    for (const command of referenced) {
      assert.ok(contributed.has(command), `${command} is contributed`);
      assert.ok(registered.has(command), `${command} is registered in client/extension.ts`);
    }
  });

  it("packages its media, the icon and the changelog in the VSIX (.vscodeignore is an allowlist)", () => {
    const allow = readFileSync(path.join(ROOT, ".vscodeignore"), "utf8").split("\n").map((l) => l.trim());
    for (const line of ["!media/walkthrough/**", `!${pkg.icon}`, "!CHANGELOG.md"]) assert.ok(allow.includes(line), line);
    assert.ok(!allow.some((l) => l.startsWith("!docs")), "docs/ stays out of the VSIX");
  });
});

describe("package.json Marketplace fields", () => {
  it("has a 128×128 PNG icon, categories, keywords, repository, license, gallery banner and a changelog", () => {
    const icon = readFileSync(path.join(ROOT, pkg.icon));
    assert.equal(icon.subarray(1, 4).toString("latin1"), "PNG");
    assert.deepEqual([icon.readUInt32BE(16), icon.readUInt32BE(20)], [128, 128]);
    assert.ok(pkg.categories.length > 0 && pkg.keywords.length > 0);
    assert.ok(pkg.repository.url && pkg.license && pkg.galleryBanner.color);
    assert.ok(existsSync(path.join(ROOT, "CHANGELOG.md")));
  });

  it("builds a VSIX under 3 MB (checked when `npm run package` has built one)", function () {
    const vsix = path.join(ROOT, "bedrock-budget.vsix");
    if (!existsSync(vsix)) return this.skip();
    const size = statSync(vsix).size;
    assert.ok(size < 3 * 1024 * 1024, `bedrock-budget.vsix is ${(size / 1024 / 1024).toFixed(2)} MB`);
  });
});
