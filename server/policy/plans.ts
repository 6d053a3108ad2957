/**
 * Usage plans (pure): which tier a caller is on, the rate limit that applies to it, and the caps
 * of the tiers expanded into one cap per (tier cap, caller), so each caller has its own wall.
 */
import { callerNames, type CallSubject } from "../budget/capMatch";
import { capId, type CapConfig, type Config, type RateLimitConfig } from "../config/schema";

/** The tier of a caller: the first of its names (access key id, profile, user) that `callers` lists. */
export function tierOf(config: Pick<Config, "callers">, who: Pick<CallSubject, "caller" | "callerProfile" | "user">): string | undefined {
  for (const name of callerNames(who)) {
    const tier = config.callers?.[name];
    if (tier !== undefined) return tier;
  }
  return undefined;
}

/** The rate limit of a caller on `tier`: the tier's fields over the top-level ones; undefined when nothing limits it. */
export function rateLimitFor(config: Pick<Config, "rateLimit" | "tiers">, tier: string | undefined): RateLimitConfig | undefined {
  const own = tier === undefined ? undefined : config.tiers?.[tier]?.rateLimit;
  const merged: RateLimitConfig = { ...config.rateLimit, ...own };
  return Object.values(merged).some((v) => v !== undefined) ? merged : undefined;
}

/** The id of a tier cap's wall for one caller: `<cap id>@<caller>`. */
export function tierCapId(cap: CapConfig, caller: string): string {
  return `${capId(cap)}@${caller}`;
}

/**
 * The caps in force: the top-level caps, then each tier cap once per caller on that tier, scoped
 * to that caller (a tier cap is per caller: "per-agent caps"; a shared wall is a top-level cap
 * with `callers`). Each cap once: the gateway's settings hold the tier caps expanded already
 * (gateway.ts), and expanding them again would count each twice (the what-if's warnings, clamps).
 */
export function capsInForce(config: Pick<Config, "caps" | "tiers" | "callers">): CapConfig[] {
  const out = [...config.caps];
  if (!config.callers) return out;
  const ids = new Set(out.map(capId));
  for (const [caller, tier] of Object.entries(config.callers)) {
    for (const cap of config.tiers?.[tier]?.caps ?? []) {
      const id = tierCapId(cap, caller);
      if (ids.has(id)) continue;
      ids.add(id);
      out.push({ ...cap, id, callers: [caller] });
    }
  }
  return out;
}
