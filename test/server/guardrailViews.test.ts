/**
 * A guardrail attached to a model call, as the reports see it: the call's record keeps the
 * guardrail's part apart (cost, worst case, policy units, whether estimated), and the CSV export
 * carries it; through the real AWS SDK against the fake Bedrock.
 */
import assert from "node:assert/strict";
import { ConverseCommand, ConverseStreamCommand, type ConverseCommandInput } from "@aws-sdk/client-bedrock-runtime";
import { API_PATHS, DASHBOARD_PATHS, TOKEN_HEADER, type CallsResponse } from "../../server/protocol";
import { CSV_COLUMNS } from "../../server/ledger/report";
import { SONNET_45, startHarness, type Harness } from "../support/harness";

const calls = async (h: Harness) =>
  ((await (await fetch(`${h.gateway.url}${API_PATHS.calls}?limit=1000`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } })).json()) as CallsResponse).calls;

/** Every unit on every one of the four priced policies costs $0.0005. */
const PRICING = { contentPolicy: 0.15, topicPolicy: 0.15, wordPolicy: 0.1, sensitiveInformationPolicy: 0.1 };
const PER_UNIT = 500_000_000n;

const converse = (trace: boolean): ConverseCommandInput => ({
  modelId: SONNET_45,
  messages: [{ role: "user", content: [{ text: "Is this fine?" }] }],
  inferenceConfig: { maxTokens: 100 },
  guardrailConfig: { guardrailIdentifier: "gr-1", guardrailVersion: "1", ...(trace ? { trace: "enabled" as const } : {}) },
});

describe("gateway: an attached guardrail's part in the call's record and the CSV export", function () {
  let h: Harness;
  afterEach(() => h?.close());

  it("keeps the part the trace reports, and the part estimated from text, each marked; the CSV export carries both", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    await h.client.send(new ConverseCommand(converse(true)));
    await h.client.send(new ConverseCommand(converse(false)));
    const [reported, estimated] = (await calls(h)).sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    // The fake reports 1 input + 1 output unit on each of the four priced policies: 8 policy units.
    assert.deepEqual(reported!.guardrail, { id: "gr-1", costPicos: String(2n * PER_UNIT), worstCasePicos: reported!.guardrail!.worstCasePicos, units: 8, unitsEstimated: false });
    assert.ok(BigInt(reported!.guardrail!.worstCasePicos) >= 15n * PER_UNIT);
    assert.deepEqual({ ...estimated!.guardrail, worstCasePicos: "" }, { id: "gr-1", costPicos: String(2n * PER_UNIT), worstCasePicos: "", units: 8, unitsEstimated: true });
    assert.equal(estimated!.usageEstimated, false, "the tokens were reported");

    const csv = await (await fetch(`${h.gateway.url}${DASHBOARD_PATHS.exportCsv}`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } })).text();
    const rows = csv.trim().split("\n").slice(1).map((line) => line.split(","));
    const col = (row: string[], name: (typeof CSV_COLUMNS)[number]) => row[CSV_COLUMNS.indexOf(name)];
    assert.deepEqual(rows.map((r) => [col(r, "guardrailCostUsd"), col(r, "guardrailUnits"), col(r, "guardrailEstimated")]).sort(), [["0.001", "8", "false"], ["0.001", "8", "true"]]);
  });

  it("a stream Bedrock dropped keeps the guardrail's worst case as its part, marked estimated", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "drop", afterChunks: 2 }));
    const out = await h.client.send(new ConverseStreamCommand(converse(true)));
    await (async () => {
      for await (const _ of out.stream!) void _;
    })().catch(() => undefined);
    const [call] = await calls(h);
    assert.equal(call!.outcome, "upstream-failed");
    // 1 input + 14 output text units on four policies: $0.0075, 60 policy units.
    assert.deepEqual(call!.guardrail, { id: "gr-1", costPicos: String(15n * PER_UNIT), worstCasePicos: String(15n * PER_UNIT), units: 60, unitsEstimated: true });
  });

  it("a call without a guardrail has no part", async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 1 }], guardrailPricing: PRICING });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 20 } }));
    const { guardrailConfig: _, ...plain } = converse(false);
    await h.client.send(new ConverseCommand(plain));
    const [call] = await calls(h);
    assert.equal(call!.guardrail, undefined);
  });
});
