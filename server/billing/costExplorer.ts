/**
 * Adapter: what AWS billed for Bedrock usage per UTC day, service and usage type in one month (Cost
 * Explorer GetCostAndUsage, DAILY, UnblendedCost, record type Usage: no credits, refunds or tax),
 * under the services the table names and those Cost Explorer lists for Bedrock, with the user's
 * credentials. The endpoint
 * follows the SDK's rules (AWS_ENDPOINT_URL_COST_EXPLORER for tests); HTTPS goes through HTTPS_PROXY
 * as model calls do. The bill lags about a day.
 */
import { CostExplorerClient, GetCostAndUsageCommand, GetDimensionValuesCommand } from "@aws-sdk/client-cost-explorer";
import type { CredentialSource } from "../credentials";
import { OutboundHttpsAgent } from "../httpsProxy";
import { isBedrockService, type BillRow } from "./reconcile";

/** Cost Explorer's API is served from us-east-1. */
const COST_EXPLORER_REGION = "us-east-1";
/** Bounds the pagination: a month of daily groups fits in a few pages. */
const MAX_PAGES = 100;

/** [start, end) of `month` (YYYY-MM) in UTC days, the end capped at tomorrow (the bill has nothing later). */
export function monthPeriod(month: string, now: Date): { Start: string; End: string } {
  const [y, m] = month.split("-").map(Number) as [number, number];
  const start = new Date(Date.UTC(y, m - 1, 1));
  const next = new Date(Date.UTC(y, m, 1));
  const tomorrow = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  if (start >= tomorrow) throw new Error(`month ${month} has not started: Cost Explorer has no bill for it yet`);
  const end = next < tomorrow ? next : tomorrow;
  return { Start: start.toISOString().slice(0, 10), End: end.toISOString().slice(0, 10) };
}

/**
 * The Bedrock services the account was billed under in `period`: a marketplace model bills under a
 * service of its own, and one the price table lacks (a new release) would be missed by names
 * built from the table (ce:GetDimensionValues).
 */
async function billedBedrockServices(client: CostExplorerClient, period: { Start: string; End: string }): Promise<string[]> {
  const found: string[] = [];
  let NextPageToken: string | undefined;
  for (let page = 0; ; page++) {
    if (page >= MAX_PAGES) throw new Error(`Cost Explorer returned more than ${MAX_PAGES} pages of service names: stopped`);
    const out = await client.send(new GetDimensionValuesCommand({ TimePeriod: period, Dimension: "SERVICE", SearchString: "Bedrock", Context: "COST_AND_USAGE", ...(NextPageToken ? { NextPageToken } : {}) }));
    for (const v of out.DimensionValues ?? []) if (v.Value && isBedrockService(v.Value)) found.push(v.Value);
    NextPageToken = out.NextPageToken;
    if (!NextPageToken) return found;
  }
}

export async function fetchBedrockBill(month: string, services: string[], credentials: CredentialSource, now = new Date()): Promise<BillRow[]> {
  const client = new CostExplorerClient({ region: COST_EXPLORER_REGION, credentials, maxAttempts: 3, requestHandler: { httpsAgent: new OutboundHttpsAgent() } });
  const rows: BillRow[] = [];
  try {
    const period = monthPeriod(month, now);
    const billed = [...new Set([...services, ...(await billedBedrockServices(client, period))])];
    let NextPageToken: string | undefined;
    for (let page = 0; ; page++) {
      if (page >= MAX_PAGES) throw new Error(`Cost Explorer returned more than ${MAX_PAGES} pages: stopped`);
      const out = await client.send(
        new GetCostAndUsageCommand({
          TimePeriod: period,
          Granularity: "DAILY",
          Metrics: ["UnblendedCost"],
          // Usage only: credits, refunds and tax are billed under the same services and would net
          // into the day's figure (a credit reads as calls the ledger overcharged).
          Filter: { And: [{ Dimensions: { Key: "SERVICE", Values: billed } }, { Dimensions: { Key: "RECORD_TYPE", Values: ["Usage"] } }] },
          GroupBy: [
            { Type: "DIMENSION", Key: "SERVICE" },
            { Type: "DIMENSION", Key: "USAGE_TYPE" },
          ],
          ...(NextPageToken ? { NextPageToken } : {}),
        }),
      );
      for (const day of out.ResultsByTime ?? []) {
        const date = day.TimePeriod?.Start;
        if (!date) continue;
        for (const group of day.Groups ?? []) {
          const [service = "", usageType = ""] = group.Keys ?? [];
          const cost = group.Metrics?.UnblendedCost;
          if (!cost?.Amount) continue;
          if (cost.Unit && cost.Unit !== "USD") throw new Error(`Cost Explorer reports ${service} ${usageType} in ${cost.Unit}, not USD`);
          rows.push({ date, service, usageType, amountUsd: cost.Amount });
        }
      }
      NextPageToken = out.NextPageToken;
      if (!NextPageToken) break;
    }
  } finally {
    client.destroy();
  }
  return rows;
}
