/**
 * package.json's `contributes.configuration`, generated from the one config schema so the VS Code
 * settings and the config file cannot drift apart. `npm run sync-settings` writes it; a unit test
 * fails when package.json is out of date.
 */
import { z } from "zod";
import { configSchema } from "../server/config/schema";

/** Keys that decide where money goes or which limits hold: a workspace (a cloned repo) may not override them. */
const MACHINE_SCOPED = new Set(["caps", "pricing", "guardrailPricing", "ledgerDir", "upstreamEndpoint", "region", "awsProfile", "port", "timeZone", "allowUnmeteredOperations", "allowApiKeys", "maxRequestBytes", "user", "teamLedger", "team", "teamUnavailable"]);

export function settingsContribution(): { title: string; properties: Record<string, unknown> } {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as { properties: Record<string, Record<string, unknown>> };
  const properties: Record<string, unknown> = {};
  Object.entries(schema.properties).forEach(([key, property], order) => {
    const { description, ...rest } = property;
    properties[`bedrockBudget.${key}`] = {
      ...rest,
      ...(description ? { markdownDescription: String(description) } : {}),
      scope: MACHINE_SCOPED.has(key) ? "machine" : "window",
      order,
    };
  });
  return { title: "Bedrock Budget", properties };
}
