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

/** Tags from the `x-bedrock-budget-tags: team=search; feature=summaries` header. */
export function tagsFromHeader(value: string | undefined): Record<string, string> {
  const tags: Record<string, string> = {};
  if (!value) return tags;
  for (const part of value.split(/[;,]/)) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim().slice(0, 64);
    const val = part.slice(eq + 1).trim().slice(0, 256);
    if (key) tags[key] = val;
  }
  return tags;
}
