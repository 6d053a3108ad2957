/**
 * package.json's `contributes.configuration` and `capabilities.untrustedWorkspaces`, generated from
 * the one config schema so the VS Code settings and the config file cannot drift apart.
 * `npm run sync-settings` writes them; a unit test fails when package.json is out of date.
 */
import { z } from "zod";
import { configSchema } from "../server/config/schema";
import { decidesMoney } from "../server/config/settingsCheck";

export function settingsContribution(): { title: string; properties: Record<string, unknown> } {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as { properties: Record<string, Record<string, unknown>> };
  const properties: Record<string, unknown> = {};
  Object.entries(schema.properties).forEach(([key, property], order) => {
    const { description, ...rest } = property;
    properties[`bedrockBudget.${key}`] = {
      ...rest,
      ...(description ? { markdownDescription: String(description) } : {}),
      // Keys that decide where money goes or which limits hold: a workspace (a cloned repo) may not override them.
      scope: decidesMoney(key) ? "machine" : "window",
      order,
    };
  });
  return { title: "Bedrock Budget", properties };
}

/** In an untrusted workspace (Restricted Mode) VS Code ignores its values of every setting listed here: all of ours. */
export function untrustedWorkspaces(): { supported: "limited"; description: string; restrictedConfigurations: string[] } {
  return {
    supported: "limited",
    description: "In Restricted Mode the workspace's own bedrockBudget.* settings are ignored: caps, prices and where calls go come from your user settings only.",
    restrictedConfigurations: Object.keys(configSchema.shape).map((key) => `bedrockBudget.${key}`),
  };
}
