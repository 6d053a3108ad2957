/**
 * Prometheus metrics at /__bedrock-budget/v1/metrics (prom-client, on its own Registry, not the
 * global one): settled calls, tokens and dollars by model, tool and outcome; throttled calls; cap
 * utilisation; admission latency (request received to forwarded upstream). The route shows model
 * names and spend, so it needs the user's token, as the call log does (header or `?token=`).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CapFigure } from "../budget/caps";
import type { CallRecord } from "../ledger/types";
import type { GatewaySecret } from "../ledger/secret";
import { picosToUsd } from "../metering/money";
import { API_PATHS } from "../protocol";
import { authorized, forbidden, json, type AnyRequest, type AnyResponse, type Routes } from "../http";

type CallLabels = "model" | "tool" | "outcome";
/** bedrock_budget_tokens_total's kinds, in LabelSums.tokens order. */
const TOKEN_KINDS = ["input", "output", "cache_read", "cache_write"] as const;

interface LabelSums {
  labels: Record<CallLabels, string>;
  calls: number;
  tokens: [number, number, number, number];
  picos: bigint;
}
/** The outcome a rate limit gives (usage plans): counted again on its own, as throttles. */
const THROTTLED = "throttled";
/** Seconds from a request's arrival to its forwarding: the gateway's own work (read, verify, price, reserve, journal). */
const ADMISSION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class GatewayMetrics implements Routes {
  readonly name = "metrics";
  readonly registry = new Registry();
  /**
   * Settled calls' figures per label set, summed as they settle and handed to prom-client only when
   * scraped (its label lookups per call cost more than the sums); dollars exact (bigint pico-dollars) until then.
   */
  private readonly sums = new Map<string, LabelSums>();
  private readonly admissionSeconds: Histogram;

  constructor(
    /** The caps' figures now (read at each scrape). */
    caps: () => CapFigure[],
    private readonly secret: () => GatewaySecret,
  ) {
    const registers = [this.registry];
    const sums = this.sums;
    new Counter({
      name: "bedrock_budget_calls_total",
      help: "Settled Bedrock calls, refused and failed ones included.",
      labelNames: ["model", "tool", "outcome"],
      registers,
      collect() {
        this.reset();
        for (const s of sums.values()) this.inc(s.labels, s.calls);
      },
    });
    new Counter({
      name: "bedrock_budget_tokens_total",
      help: "Tokens of settled calls; kind is input, output, cache_read or cache_write.",
      labelNames: ["model", "tool", "outcome", "kind"],
      registers,
      collect() {
        this.reset();
        for (const s of sums.values()) {
          TOKEN_KINDS.forEach((kind, i) => {
            if (s.tokens[i]! > 0) this.inc({ ...s.labels, kind }, s.tokens[i]!);
          });
        }
      },
    });
    new Counter({
      name: "bedrock_budget_cost_usd_total",
      help: "US dollars charged for settled calls (summed exactly, shown as a float).",
      labelNames: ["model", "tool", "outcome"],
      registers,
      collect() {
        this.reset();
        for (const s of sums.values()) this.inc(s.labels, picosToUsd(s.picos));
      },
    });
    new Counter({
      name: "bedrock_budget_throttles_total",
      help: "Calls refused by a rate limit (outcome throttled, HTTP 429).",
      labelNames: ["model", "tool"],
      registers,
      collect() {
        this.reset();
        for (const s of sums.values()) if (s.labels.outcome === THROTTLED) this.inc({ model: s.labels.model, tool: s.labels.tool }, s.calls);
      },
    });
    const capGauges = (name: string, help: string, value: (c: CapFigure) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["cap", "scope", "window"],
        registers,
        collect() {
          this.reset();
          for (const cap of caps()) this.set({ cap: cap.id, scope: cap.scope, window: cap.window }, value(cap));
        },
      });
    capGauges("bedrock_budget_cap_utilisation_ratio", "Spent share of each cap's limit in its current window (1 = used up).", (c) => ratio(c.spentPicos, c.limitPicos));
    capGauges("bedrock_budget_cap_spent_usd", "US dollars spent in each cap's current window.", (c) => picosToUsd(c.spentPicos));
    capGauges("bedrock_budget_cap_limit_usd", "Each cap's limit in US dollars.", (c) => picosToUsd(c.limitPicos));
    this.admissionSeconds = new Histogram({
      name: "bedrock_budget_admission_seconds",
      help: "Time from a Bedrock request's arrival at the gateway to its forwarding upstream.",
      buckets: ADMISSION_BUCKETS,
      registers,
    });
  }

  /** A settled call (every outcome). */
  record(record: CallRecord): void {
    // NUL cannot occur in a model id the gateway accepted nor in a tool read from a header: the key is unambiguous.
    const key = `${record.baseModelId}\u0000${record.tool}\u0000${record.outcome}`;
    let s = this.sums.get(key);
    if (!s) {
      s = { labels: { model: record.baseModelId, tool: record.tool, outcome: record.outcome }, calls: 0, tokens: [0, 0, 0, 0], picos: 0n };
      this.sums.set(key, s);
    }
    const u = record.usage;
    s.calls++;
    s.tokens[0] += u.inputTokens;
    s.tokens[1] += u.outputTokens;
    s.tokens[2] += u.cacheReadInputTokens;
    s.tokens[3] += u.cacheWrite5mInputTokens + u.cacheWrite1hInputTokens;
    s.picos += BigInt(record.costPicos);
  }

  /** A request was forwarded `seconds` after it arrived. */
  admitted(seconds: number): void {
    this.admissionSeconds.observe(seconds);
  }

  handles(rawPath: string): boolean {
    return rawPath.split("?")[0] === API_PATHS.metrics;
  }

  async handle(req: AnyRequest, res: AnyResponse): Promise<void> {
    if (req.method !== "GET") return json(res, 405, { message: "the metrics route is read-only: use GET" });
    if (!authorized(req, new URL(req.url ?? "/", "http://localhost"), this.secret())) return forbidden(res);
    const text = Buffer.from(await this.registry.metrics());
    res.writeHead(200, { "content-type": this.registry.contentType, "content-length": String(text.byteLength), "cache-control": "no-store" });
    res.end(text);
  }
}

/** spent / limit, to 6 decimal places, from exact figures. */
function ratio(spent: bigint, limit: bigint): number {
  return limit > 0n ? Number((spent * 1_000_000n) / limit) / 1_000_000 : 0;
}
