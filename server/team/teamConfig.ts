/**
 * team.json — what a team lead writes into the shared team ledger — and how it merges with one
 * member's own settings. Pure: no I/O. The schema lives here and nowhere else.
 *
 *   {
 *     "timeZone": "Europe/Paris",                       // windows of the team caps (all members alike)
 *     "caps":    [{ "id": "team-month", "window": "month", "limitUsd": 500 }],   // team caps
 *     "tiers":   { "junior": { "caps": [{ "window": "day", "limitUsd": 5 }] } },   // personal caps by tier
 *     "defaultTier": "junior",                          // for members not listed
 *     "members": { "alice": { "tier": "senior", "caps": [{ "id": "alice-opus", "window": "day", "limitUsd": 20, "model": "*opus*" }] } },
 *     "pricing": { "my-model*": { "inputPer1M": 1, "outputPer1M": 4 } }
 *   }
 */
import { scopeKey } from "../budget/engine";
import { z } from "zod";
import { duplicateKeys } from "../config/duplicateKeys";
import { capAction, capId, capSchema, checkCapRules, formatIssuePath, isTimeZone, priceOverrideSchema, type CapConfig, type Config, type PriceOverride } from "../config/schema";
import { RESERVED_KEY_MESSAGE, reservedKeyPath } from "../config/reservedKeys";

const name = z.string().min(1).max(100).regex(/^[\w.@+-]+$/, "use letters, digits, '.', '@', '+', '_' or '-'");

/** A cap of the whole team: scope is always "team" (may be omitted). */
const teamCapSchema = capSchema.extend({ scope: z.literal("team", { error: 'a cap in team.json "caps" is a team cap: scope must be "team" (or omitted)' }).default("team") });
/** A personal cap set by the lead for a member or tier: scope is always "personal" (may be omitted). */
const memberCapSchema = capSchema.extend({ scope: z.literal("personal", { error: 'caps of tiers and members are personal: scope must be "personal" (or omitted)' }).default("personal") });

export const teamFileSchema = z
  .strictObject({
    version: z.literal(1).default(1).describe("Format version of team.json."),
    timeZone: z.string().min(1).optional().refine((tz) => tz === undefined || isTimeZone(tz), "an IANA time zone such as Europe/Paris").describe("Time zone of the team caps' windows, the same for every member."),
    caps: z.array(teamCapSchema.superRefine(checkCapRules)).default([]).describe("Team caps: the spend of every member counts."),
    tiers: z.record(name, z.strictObject({ caps: z.array(memberCapSchema.superRefine(checkCapRules)).default([]) })).default({}).describe("Named sets of personal caps."),
    defaultTier: name.optional().describe("Tier of members not listed in members."),
    members: z.record(name, z.strictObject({ tier: name.optional(), caps: z.array(memberCapSchema.superRefine(checkCapRules)).default([]) })).default({}).describe("Per member (by user name): a tier and/or own personal caps."),
    pricing: z.record(z.string().min(1), priceOverrideSchema).default({}).describe("Price overrides for everyone on the team."),
  })
  .superRefine((team, ctx) => {
    const tierNames = new Set(Object.keys(team.tiers));
    if (team.defaultTier !== undefined && !tierNames.has(team.defaultTier)) {
      ctx.addIssue({ code: "custom", path: ["defaultTier"], message: `no tier named "${team.defaultTier}" in tiers` });
    }
    for (const [member, m] of Object.entries(team.members)) {
      if (m.tier !== undefined && !tierNames.has(m.tier)) ctx.addIssue({ code: "custom", path: ["members", member, "tier"], message: `no tier named "${m.tier}" in tiers` });
    }
    const dup = (caps: CapConfig[], path: PropertyKey[]) => {
      const seen = new Set<string>();
      caps.forEach((cap, i) => {
        const id = capId(cap);
        if (seen.has(id)) ctx.addIssue({ code: "custom", path: [...path, i, "id"], message: `two caps have the id "${id}"` });
        seen.add(id);
      });
    };
    dup(team.caps, ["caps"]);
    for (const [t, tier] of Object.entries(team.tiers)) dup(tier.caps, ["tiers", t, "caps"]);
    for (const [member, m] of Object.entries(team.members)) dup(m.caps, ["members", member, "caps"]);
    // A personal cap and a team cap are different walls: sharing an id, one would silently stand for both.
    const teamIds = new Set(team.caps.map(capId));
    const sharesTeamId = (caps: CapConfig[], path: PropertyKey[]) =>
      caps.forEach((cap, i) => {
        if (teamIds.has(capId(cap))) ctx.addIssue({ code: "custom", path: [...path, i, "id"], message: `a team cap in "caps" has the id "${capId(cap)}": give this personal cap another id` });
      });
    for (const [t, tier] of Object.entries(team.tiers)) sharesTeamId(tier.caps, ["tiers", t, "caps"]);
    for (const [member, m] of Object.entries(team.members)) sharesTeamId(m.caps, ["members", member, "caps"]);
  });

export type TeamFile = z.infer<typeof teamFileSchema>;
export type TeamFileInput = z.input<typeof teamFileSchema>;
export type TeamFileResult = { ok: true; team: TeamFile } | { ok: false; errors: string[] };

/** Validates team.json's parsed content; every error names its key (`members.alice.tier: …`). */
export function parseTeamFile(raw: unknown): TeamFileResult {
  const reserved = reservedKeyPath(raw);
  // The path names at least the key, never the document's root.
  if (reserved) return { ok: false, errors: [`${formatIssuePath(reserved)}: ${RESERVED_KEY_MESSAGE}`] };
  const result = teamFileSchema.safeParse(raw ?? {});
  if (result.success) return { ok: true, team: result.data };
  return { ok: false, errors: result.error.issues.map((issue) => `${formatIssuePath(issue.path, "(team.json)")}: ${issue.message}`) };
}

/** Parses team.json's text (JSON errors included in the same form). */
export function parseTeamFileText(text: string): TeamFileResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [`(team.json): not valid JSON: ${(err as Error).message}`] };
  }
  // A key set twice keeps only its last value: a second "caps" would drop the team's caps unseen.
  const duplicates = duplicateKeys(text);
  if (duplicates.length > 0) return { ok: false, errors: duplicates.map((key) => `${key}: set twice; JSON keeps only the last, so the first would be dropped without a word. Keep one`) };
  // A file saved as null is no team file: every team cap would be gone.
  if (raw === null) return { ok: false, errors: ["(team.json): the file holds null, not the team's settings object"] };
  return parseTeamFile(raw);
}

export interface EffectiveCaps {
  /** Enforced by the local engine: this machine's own spend. */
  personal: CapConfig[];
  /** Shared with the team: counted by the team store. */
  team: CapConfig[];
  /** The member's own price overrides (they replace the built-in rows). */
  pricing: Record<string, PriceOverride>;
  /** team.json's prices: they can only raise a rate (PriceBook's raiseOnly rows), never lower one. */
  teamPricing: Record<string, PriceOverride>;
  /** Zone of the team caps' windows. */
  teamTimeZone: string;
  /** How caps of the same id in team.json and the settings were reconciled, for the log. */
  warnings: string[];
}

/**
 * One member's caps: own settings merged with team.json, which can only tighten them (anyone who
 * can write the team folder can write team.json). Both sources' caps are enforced. On the same cap
 * id: with the same scope, window, model and action they are one cap at the LOWER limit (for a
 * team cap, the member's lower figure binds only this member's admission); otherwise they limit
 * different things, or differently (a `warn` cap in team.json must not stand in for the member's
 * `block` of the same id), so both apply, the member's own renamed `<id>:own` (team.json's keeps the id, by which a
 * team cap is counted). No merge result is ever looser than either source alone.
 */
export function mergeTeamCaps(config: Pick<Config, "caps" | "pricing">, team: TeamFile | undefined, user: string): EffectiveCaps {
  const warnings: string[] = [];
  const merged: CapConfig[] = [];
  if (team) {
    const member = team.members[user];
    const tierName = member?.tier ?? team.defaultTier;
    const tierCaps = tierName !== undefined ? team.tiers[tierName]?.caps ?? [] : [];
    const memberCaps = member?.caps ?? [];
    const memberIds = new Set(memberCaps.map(capId));
    // Within team.json, a member's own entry replaces their tier's cap of the same id (the lead's choice).
    // Ids are unique across the lists (the schema refuses a personal cap with a team cap's id).
    merged.push(...team.caps, ...tierCaps.filter((c) => !memberIds.has(capId(c))), ...memberCaps);
  }
  const taken = new Set([...merged.map(capId), ...config.caps.map(capId)]);
  for (const cap of config.caps) {
    const id = capId(cap);
    const i = merged.findIndex((c) => capId(c) === id);
    const lead = merged[i];
    if (!lead) {
      merged.push(cap);
    } else if (lead.scope === cap.scope && lead.window === cap.window && scopeKey(lead) === scopeKey(cap) && actionKey(lead) === actionKey(cap)) {
      if (cap.limitUsd !== lead.limitUsd) {
        const lower = Math.min(cap.limitUsd, lead.limitUsd);
        warnings.push(`cap "${id}": team.json says $${lead.limitUsd}, your settings $${cap.limitUsd}; the lower, $${lower}, applies`);
        merged[i] = { ...lead, id, limitUsd: lower };
      }
    } else {
      const own = freeId(`${id}:own`, taken);
      // Stryker disable next-line CallExpression: `<id>:own<n>` of two distinct ids never coincide and settings' ids are unique, so this only guards the invariant.
      taken.add(own);
      warnings.push(`cap "${id}" in your settings limits another scope, window or model than team.json's cap of the same id, or acts otherwise at its limit: both apply, yours as "${own}"`);
      merged.push({ ...cap, id: own });
    }
  }
  return {
    personal: merged.filter((c) => c.scope === "personal"),
    team: merged.filter((c) => c.scope === "team"),
    pricing: config.pricing,
    teamPricing: team?.pricing ?? {},
    // Not the member's own zone: members in other zones would count in windows that start at other
    // instants (other keys, other spend-file windows), each group with the whole cap to itself.
    teamTimeZone: team?.timeZone ?? "UTC",
    warnings,
  };
}

/** What a cap does at its limit, with its parameters: two caps merge into one only when these match. */
function actionKey(cap: CapConfig): string {
  return JSON.stringify([capAction(cap), cap.downgradeTo, cap.downgradeAt]); // an unset field is null in the array
}

/** `base`, or `base2`, `base3`… : the first id no other cap uses. */
function freeId(base: string, taken: Set<string>): string {
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}${n}`;
  return id;
}
