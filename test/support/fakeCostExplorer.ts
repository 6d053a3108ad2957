/**
 * A local fake of Cost Explorer (`AWSInsightsIndexService.GetCostAndUsage` and, for SERVICE,
 * `GetDimensionValues`, signed for `ce` in
 * us-east-1): daily UnblendedCost grouped by SERVICE and USAGE_TYPE, filtered by an expression on
 * SERVICE, USAGE_TYPE and RECORD_TYPE (And / Or / Not / Dimensions, one root per expression, as
 * Cost Explorer requires), in the real response shape (ResultsByTime[].TimePeriod / Groups[].Keys /
 * Metrics.UnblendedCost). Groups of different record types (usage, a credit, tax) on one day and
 * usage type are summed, as Cost Explorer sums what the filter lets through.
 */
import type { FakeCredentials } from "./fakeBedrock";
import { FakeAwsJsonService, type JsonAnswer, type JsonHit } from "./fakeAwsJson";
import { picosToDecimalString, usdToPicos } from "../../server/metering/money";

const picosOf = (amount: string) => usdToPicos(amount);
const decimalOf = (picos: bigint) => picosToDecimalString(picos);

export interface FakeCost {
  date: string; // YYYY-MM-DD
  service: string;
  usageType: string;
  amount: string;
  /** Cost Explorer's RECORD_TYPE: "Usage" (the default), "Credit", "Refund", "Tax", … */
  recordType?: string;
}

interface Expression {
  And?: Expression[];
  Or?: Expression[];
  Not?: Expression;
  Dimensions?: { Key: string; Values: string[]; MatchOptions?: string[] };
  Tags?: unknown;
  CostCategories?: unknown;
}

const DIMENSIONS: Record<string, (c: FakeCost) => string> = {
  SERVICE: (c) => c.service,
  USAGE_TYPE: (c) => c.usageType,
  RECORD_TYPE: (c) => c.recordType ?? "Usage",
};

/** Whether `cost` passes `expr`, or why Cost Explorer would refuse the expression (a ValidationException). */
function passes(expr: Expression, cost: FakeCost): boolean | string {
  const roots = (["And", "Or", "Not", "Dimensions", "Tags", "CostCategories"] as const).filter((k) => expr[k] !== undefined);
  if (roots.length !== 1) return `Expression has ${roots.length === 0 ? "no" : "more than one"} root. Only one root operator is allowed for each expression: And, Or, Not, Dimensions, Tags, CostCategories`;
  const [root] = roots;
  if (root === "And" || root === "Or") {
    const parts = expr[root]!;
    if (!Array.isArray(parts) || parts.length < 2) return `${root} needs at least two expressions`;
    const each = parts.map((p) => passes(p, cost));
    const bad = each.find((r) => typeof r === "string");
    if (bad !== undefined) return bad;
    return root === "And" ? each.every(Boolean) : each.some(Boolean);
  }
  if (root === "Not") {
    const r = passes(expr.Not!, cost);
    return typeof r === "string" ? r : !r;
  }
  if (root !== "Dimensions") return `this fake filters on Dimensions only, not ${root}`;
  const d = expr.Dimensions!;
  const value = DIMENSIONS[d.Key];
  if (!value) return `this fake filters on ${Object.keys(DIMENSIONS).join(", ")}, not ${d.Key}`;
  if (!Array.isArray(d.Values) || d.Values.length === 0) return `Dimensions ${d.Key} needs Values`;
  return d.Values.includes(value(cost));
}

/** GetDimensionValues for SERVICE: the services billed in the period whose names contain SearchString (case-insensitive). */
function dimensionValues(body: unknown, costs: FakeCost[]): JsonAnswer {
  const b = body as { TimePeriod?: { Start: string; End: string }; Dimension?: string; SearchString?: string; Context?: string };
  if (!b.TimePeriod || b.Dimension !== "SERVICE") return { status: 400, type: "ValidationException", message: "this fake lists SERVICE values for a TimePeriod" };
  const { Start, End } = b.TimePeriod;
  const search = (b.SearchString ?? "").toLowerCase();
  const values = [...new Set(costs.filter((c) => c.date >= Start && c.date < End && c.service.toLowerCase().includes(search)).map((c) => c.service))].sort();
  return { status: 200, body: { DimensionValues: values.map((Value) => ({ Value, Attributes: {} })), ReturnSize: values.length, TotalSize: values.length } };
}

export class FakeCostExplorer {
  private constructor(readonly service: FakeAwsJsonService) {}

  static async start(credentials: FakeCredentials, costs: FakeCost[]): Promise<FakeCostExplorer> {
    const service = await FakeAwsJsonService.start(credentials, { service: "ce", region: "us-east-1", targetPrefix: "AWSInsightsIndexService" }, (hit: JsonHit) => {
      if (hit.operation === "GetDimensionValues") return dimensionValues(hit.body, costs);
      if (hit.operation !== "GetCostAndUsage") return { status: 400, type: "UnknownOperationException", message: hit.operation };
      const b = hit.body as {
        TimePeriod?: { Start: string; End: string };
        Granularity?: string;
        Metrics?: string[];
        Filter?: Expression;
        GroupBy?: { Type: string; Key: string }[];
      };
      if (!b.TimePeriod || b.Granularity !== "DAILY" || !b.Metrics?.includes("UnblendedCost")) {
        return { status: 400, type: "ValidationException", message: "this fake answers DAILY UnblendedCost for a TimePeriod" };
      }
      const keys = (b.GroupBy ?? []).map((g) => g.Key);
      if (keys.join(",") !== "SERVICE,USAGE_TYPE") return { status: 400, type: "ValidationException", message: `this fake groups by SERVICE,USAGE_TYPE, not ${keys.join(",")}` };
      const filter = b.Filter;
      const probe = filter ? passes(filter, { date: "", service: "", usageType: "", amount: "0" }) : true;
      if (typeof probe === "string") return { status: 400, type: "ValidationException", message: probe };
      const results = [];
      for (let d = new Date(`${b.TimePeriod.Start}T00:00:00Z`); d < new Date(`${b.TimePeriod.End}T00:00:00Z`); d = new Date(d.getTime() + 86_400_000)) {
        const day = d.toISOString().slice(0, 10);
        const end = new Date(d.getTime() + 86_400_000).toISOString().slice(0, 10);
        const sums = new Map<string, { keys: [string, string]; picos: bigint }>();
        for (const c of costs) {
          if (c.date !== day || (filter && !passes(filter, c))) continue;
          const key = `${c.service}\u0000${c.usageType}`;
          const sum = sums.get(key) ?? { keys: [c.service, c.usageType], picos: 0n };
          sum.picos += picosOf(c.amount);
          sums.set(key, sum);
        }
        const groups = [...sums.values()].map((g) => ({ Keys: g.keys, Metrics: { UnblendedCost: { Amount: decimalOf(g.picos), Unit: "USD" } } }));
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
