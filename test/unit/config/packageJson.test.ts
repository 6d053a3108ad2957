/** One source of truth: the VS Code settings in package.json are generated from the config schema. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
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
