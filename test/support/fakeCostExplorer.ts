/**
 * A local fake of Cost Explorer (`AWSInsightsIndexService.GetCostAndUsage`, signed for `ce` in
 * us-east-1): daily UnblendedCost grouped by SERVICE and USAGE_TYPE, filtered by SERVICE, in the
 * real response shape (ResultsByTime[].TimePeriod / Groups[].Keys / Metrics.UnblendedCost).
 */
import type { FakeCredentials } from "./fakeBedrock";
import { FakeAwsJsonService, type JsonHit } from "./fakeAwsJson";

export interface FakeCost {
  date: string; // YYYY-MM-DD
  service: string;
  usageType: string;
  amount: string;
}

export class FakeCostExplorer {
  private constructor(readonly service: FakeAwsJsonService) {}

  static async start(credentials: FakeCredentials, costs: FakeCost[]): Promise<FakeCostExplorer> {
    const service = await FakeAwsJsonService.start(credentials, { service: "ce", region: "us-east-1", targetPrefix: "AWSInsightsIndexService" }, (hit: JsonHit) => {
      if (hit.operation !== "GetCostAndUsage") return { status: 400, type: "UnknownOperationException", message: hit.operation };
      const b = hit.body as {
        TimePeriod?: { Start: string; End: string };
        Granularity?: string;
        Metrics?: string[];
        Filter?: { Dimensions?: { Key: string; Values: string[] } };
        GroupBy?: { Type: string; Key: string }[];
      };
      if (!b.TimePeriod || b.Granularity !== "DAILY" || !b.Metrics?.includes("UnblendedCost")) {
        return { status: 400, type: "ValidationException", message: "this fake answers DAILY UnblendedCost for a TimePeriod" };
      }
      const keys = (b.GroupBy ?? []).map((g) => g.Key);
      if (keys.join(",") !== "SERVICE,USAGE_TYPE") return { status: 400, type: "ValidationException", message: `this fake groups by SERVICE,USAGE_TYPE, not ${keys.join(",")}` };
      const services = b.Filter?.Dimensions?.Key === "SERVICE" ? b.Filter.Dimensions.Values : undefined;
      const results = [];
      for (let d = new Date(`${b.TimePeriod.Start}T00:00:00Z`); d < new Date(`${b.TimePeriod.End}T00:00:00Z`); d = new Date(d.getTime() + 86_400_000)) {
        const day = d.toISOString().slice(0, 10);
        const end = new Date(d.getTime() + 86_400_000).toISOString().slice(0, 10);
        const groups = costs
          .filter((c) => c.date === day && (!services || services.includes(c.service)))
          .map((c) => ({ Keys: [c.service, c.usageType], Metrics: { UnblendedCost: { Amount: c.amount, Unit: "USD" } } }));
        results.push({ TimePeriod: { Start: day, End: end }, Total: {}, Groups: groups, Estimated: false });
      }
      return { status: 200, body: { GroupDefinitions: b.GroupBy, ResultsByTime: results, DimensionValueAttributes: [] } };
    });
    return new FakeCostExplorer(service);
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
