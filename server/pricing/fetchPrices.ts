/**
 * Adapter: fetches Bedrock's on-demand token prices for one region from the AWS Price List API
 * (GetProducts, services AmazonBedrock and AmazonBedrockFoundationModels) with the user's
 * credentials. The endpoint follows the SDK's rules (AWS_ENDPOINT_URL_PRICING for tests); HTTPS goes
 * through HTTPS_PROXY as model calls do.
 */
import { GetProductsCommand, PricingClient } from "@aws-sdk/client-pricing";
import type { CredentialSource } from "../credentials";
import { OutboundHttpsAgent } from "../httpsProxy";
import { isSkipped, parsePriceListItem, PRICE_LIST_SERVICE_CODES, type PriceListEntry, type SkippedEntry } from "./priceList";

/** The Price List API answers from us-east-1 (whatever region's prices are asked for). */
const PRICING_API_REGION = "us-east-1";
/** Bounds the pagination: Bedrock's offers hold a few thousand products at most. */
const MAX_PAGES = 200;

export async function fetchBedrockPrices(region: string, credentials: CredentialSource): Promise<{ entries: PriceListEntry[]; skipped: SkippedEntry[] }> {
  const client = new PricingClient({ region: PRICING_API_REGION, credentials, maxAttempts: 3, requestHandler: { httpsAgent: new OutboundHttpsAgent() } });
  const entries: PriceListEntry[] = [];
  const skipped: SkippedEntry[] = [];
  try {
    for (const ServiceCode of PRICE_LIST_SERVICE_CODES) {
      let NextToken: string | undefined;
      for (let page = 0; ; page++) {
        if (page >= MAX_PAGES) throw new Error(`the Price List returned more than ${MAX_PAGES} pages for ${ServiceCode}: stopped`);
        const out = await client.send(
          new GetProductsCommand({
            ServiceCode,
            FormatVersion: "aws_v1",
            Filters: [{ Type: "TERM_MATCH", Field: "regionCode", Value: region }],
            MaxResults: 100,
            ...(NextToken ? { NextToken } : {}),
          }),
        );
        for (const item of out.PriceList ?? []) {
          const parsed = parsePriceListItem(priceListText(item), region);
          if (parsed === undefined) continue;
          if (isSkipped(parsed)) skipped.push(parsed);
          else entries.push(parsed);
        }
        NextToken = out.NextToken;
        if (!NextToken) break;
      }
    }
  } finally {
    client.destroy();
  }
  return { entries, skipped };
}

/** A PriceList element as JSON text: the SDK hands each one over as a string-like (a JSON string). */
function priceListText(item: unknown): string {
  if (typeof item === "string") return item;
  if (item instanceof String || (item && typeof item === "object" && !("product" in item))) return String(item);
  return JSON.stringify(item);
}
