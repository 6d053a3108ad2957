/**
 * A local fake of the AWS Price List API (`AWSPriceListService.GetProducts`, signed for
 * `pricing` in us-east-1), answering with products shaped as the real API returns them: each
 * PriceList element a JSON string with `product.attributes` and `terms.OnDemand…priceDimensions`.
 * Pages of two products, so pagination is exercised.
 */
import type { FakeCredentials } from "./fakeBedrock";
import { FakeAwsJsonService, type JsonHit } from "./fakeAwsJson";

export interface FakeProduct {
  serviceCode: "AmazonBedrock" | "AmazonBedrockFoundationModels";
  attributes: Record<string, string>;
  unit: string;
  usd: string;
}

let sku = 0;

/** One product as the Price List serializes it (recorded shape, trimmed of fields the reader ignores). */
export function priceListItem(p: FakeProduct): string {
  const id = `FAKESKU${++sku}`;
  return JSON.stringify({
    product: { productFamily: "Amazon Bedrock", attributes: { servicecode: p.serviceCode, location: "US East (N. Virginia)", locationType: "AWS Region", ...p.attributes }, sku: id },
    serviceCode: p.serviceCode,
    terms: {
      OnDemand: {
        [`${id}.JRTCKXETXF`]: {
          priceDimensions: {
            [`${id}.JRTCKXETXF.6YS6EN2CT7`]: { unit: p.unit, endRange: "Inf", description: `${p.attributes.usagetype} per ${p.unit}`, appliesTo: [], rateCode: `${id}.JRTCKXETXF.6YS6EN2CT7`, beginRange: "0", pricePerUnit: { USD: p.usd } },
          },
          sku: id,
          effectiveDate: "2026-11-01T00:00:00Z",
          offerTermCode: "JRTCKXETXF",
          termAttributes: {},
        },
      },
    },
    version: "20261101000000",
    publicationDate: "2026-11-01T00:00:00Z",
  });
}

export class FakePricing {
  private constructor(readonly service: FakeAwsJsonService) {}

  static async start(credentials: FakeCredentials, products: FakeProduct[]): Promise<FakePricing> {
    const service = await FakeAwsJsonService.start(credentials, { service: "pricing", region: "us-east-1", targetPrefix: "AWSPriceListService" }, (hit: JsonHit) => {
      if (hit.operation !== "GetProducts") return { status: 400, type: "UnknownOperationException", message: hit.operation };
      const code = hit.body.ServiceCode;
      const filters = (hit.body.Filters as { Type: string; Field: string; Value: string }[] | undefined) ?? [];
      const matching = products.filter((p) => p.serviceCode === code && filters.every((f) => f.Type === "TERM_MATCH" && p.attributes[f.Field] === f.Value));
      const start = Number(hit.body.NextToken ?? 0);
      const page = matching.slice(start, start + 2);
      const next = start + 2 < matching.length ? String(start + 2) : undefined;
      return { status: 200, body: { FormatVersion: "aws_v1", PriceList: page.map(priceListItem), ...(next ? { NextToken: next } : {}) } };
    });
    return new FakePricing(service);
  }

  get url(): string {
    return this.service.url;
  }
  get hits(): JsonHit[] {
    return this.service.hits;
  }
  close(): Promise<void> {
    return this.service.close();
  }
}
