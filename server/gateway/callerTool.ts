/** Names the calling tool from its User-Agent, for the ledger and the dashboard. Pure. */
const KNOWN: Array<[RegExp, string]> = [
  [/\baws-cli\/(\S+)/i, "aws-cli"],
  [/\bBoto3\/(\S+)/, "boto3"],
  [/\bBotocore\/(\S+)/i, "botocore"],
  // The Bedrock flavour of Anthropic's SDKs says "AnthropicBedrock/JS 1.14.0".
  [/\bAnthropic(?:Bedrock)?\/JS (\S+)/i, "anthropic-sdk-js"],
  [/\bAnthropic(?:Bedrock)?\/Python (\S+)/i, "anthropic-sdk-python"],
  [/\blangchain/i, "langchain"],
  // The Vercel AI SDK: "ai/7.0.173 … ai-sdk-amazon-bedrock/5.0.101" (older: "ai-sdk/amazon-bedrock").
  [/\bai-sdk[/-]amazon-bedrock/i, "ai-sdk"],
  [/\baws-sdk-js\/(\S+)/i, "aws-sdk-js"],
  [/\baws-sdk-java\/(\S+)/i, "aws-sdk-java"],
  [/\baws-sdk-go-v2\/(\S+)/i, "aws-sdk-go"],
  [/\baws-sdk-rust\/(\S+)/i, "aws-sdk-rust"],
  [/\baws-sdk-dotnet/i, "aws-sdk-dotnet"],
  [/\bcurl\/(\S+)/, "curl"],
];

export function callerTool(userAgent: string | undefined): string {
  if (!userAgent) return "unknown";
  for (const [pattern, name] of KNOWN) if (pattern.test(userAgent)) return name;
  const first = userAgent.split(/[\s/]/)[0];
  return first ? first.slice(0, 40) : "unknown";
}

/**
 * Tags from the `x-bedrock-budget-tags: team=search; feature=summaries` header, kept exactly as
 * sent: the grammar (tagProblem) judges them whole, nothing is cut to fit. Pairs are separated by
 * `;`; a `,` separates pairs only where what follows it is `key=` (the older `a=1,b=2` form), so
 * `project=a,b; team=x` is project "a,b". `problem`: a part that is not key=value, said after
 * "the X-Bedrock-Budget-Tags header".
 */
export function parseTagsHeader(value: string | undefined): { tags: Record<string, string>; problem?: string } {
  const tags: Record<string, string> = {};
  if (!value) return { tags };
  for (const part of value.split(";").flatMap((p) => p.split(PAIR_AFTER_COMMA))) {
    if (part.trim() === "") continue; // `a=1;` and `a=1; ; b=2`
    const eq = part.indexOf("=");
    const key = eq < 0 ? "" : part.slice(0, eq).trim();
    if (!key) return { tags, problem: `has a part that is not key=value (${JSON.stringify(part.trim().slice(0, 80))}): ${TAGS_HEADER_RULE}` };
    tags[key] = part.slice(eq + 1).trim();
  }
  return { tags };
}

export const TAGS_HEADER_RULE = 'pairs are key=value separated by ";" (or by "," before the next key=)';

/** A `,` that the next pair follows (something shaped like a tag key, then `=`): split there, the comma dropped. */
const PAIR_AFTER_COMMA = /,(?=\s*[A-Za-z0-9:_@$#/+.-][A-Za-z0-9 :_@$#/+.-]*=)/;

/** The tags of the header (parseTagsHeader without its problem). */
export function tagsFromHeader(value: string | undefined): Record<string, string> {
  return parseTagsHeader(value).tags;
}
