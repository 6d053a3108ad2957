/** Cost-allocation tags: the one grammar for the `tags` setting, the X-Bedrock-Budget-Tags header and Converse requestMetadata, and how the three merge. Pure. */

/** Bedrock's requestMetadata characters, less those that would make `key=value` ambiguous in a key. */
export const TAG_KEY_RE = /^[A-Za-z0-9:_@$#/+.-](?:[A-Za-z0-9 :_@$#/+.-]{0,62}[A-Za-z0-9:_@$#/+.-])?$/;
/** Bedrock's requestMetadata characters (whitespace limited to spaces), up to 256 of them; may be empty. */
export const TAG_VALUE_RE = /^[A-Za-z0-9 :_@$#=/+,.-]{0,256}$/;
/** At most this many tags from each source (Bedrock's own requestMetadata limit). */
export const MAX_TAGS = 16;

export const TAG_RULE = "a tag key is 1–64 letters, digits, spaces or : _ @ $ # / + . - (no leading or trailing space); a value is up to 256 of those or = ,";

/** What is wrong with a set of tags, or undefined when every key and value follows the grammar. */
export function tagProblem(tags: Record<string, string>, source: string): string | undefined {
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS) return `${source} has ${entries.length} tags; at most ${MAX_TAGS} are allowed`;
  for (const [key, value] of entries) {
    if (!TAG_KEY_RE.test(key)) return `${source} has an invalid tag key ${JSON.stringify(key.slice(0, 80))}: ${TAG_RULE}`;
    if (typeof value !== "string" || !TAG_VALUE_RE.test(value)) return `${source} has an invalid value for tag "${key}": ${TAG_RULE}`;
  }
  return undefined;
}

/** The call's tags: the header wins over the request body, which wins over the default tags of the settings. */
export function mergeTags(defaults: Record<string, string> | undefined, body: Record<string, string>, header: Record<string, string>): Record<string, string> {
  return { ...defaults, ...body, ...header };
}
