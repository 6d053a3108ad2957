/** Ledger beside bill: model names from usage types, exact amounts, drift and its percent. */
import assert from "node:assert/strict";
import { amountToPicos, billModelName, driftPercent, reconcile } from "../../../server/billing/reconcile";
import type { CallRecord } from "../../../server/ledger/types";
import { BUILT_IN_PRICES, PriceBook } from "../../../server/metering/prices";

describe("reconcile", () => {
  it("finds the model of a bill row", () => {
    assert.equal(billModelName("Amazon Bedrock", "USE1-Nova2.0Lite-input-tokens"), "Nova2.0Lite");
    assert.equal(billModelName("Amazon Bedrock", "EUC1-NovaPro-cache-read-input-token-count"), "NovaPro");
    assert.equal(billModelName("Claude Sonnet 4.5 (Amazon Bedrock Edition)", "USE1-MP:USE1_InputTokenCount-Units"), "Claude Sonnet 4.5");
    assert.equal(billModelName("Amazon Bedrock", "Bedrock-Storage"), undefined);
    assert.equal(billModelName("AWS Lambda", "USE1-Request"), undefined);
  });

  it("converts Cost Explorer amounts exactly", () => {
    assert.equal(amountToPicos("1.25"), 1_250_000_000_000n);
    assert.equal(amountToPicos("0.0000000000015"), 2n); // rounded half up past the 12th decimal
    assert.equal(amountToPicos("1.5E-6"), 1_500_000n);
    assert.equal(amountToPicos("-0.01"), -10_000_000_000n);
    assert.throws(() => amountToPicos("abc"), /not a number/);
  });

  it("rounds the drift percent to a tenth, and has none for a zero bill", () => {
    assert.equal(driftPercent(3n, 38n), 7.9);
    assert.equal(driftPercent(-1n, 3n), -33.3);
    assert.equal(driftPercent(1n, 8n), 12.5);
    assert.equal(driftPercent(5n, 0n), null);
  });

  it("joins per UTC day and model; a bill row no table row names gets its own line", () => {
    const call = (at: string, baseModelId: string, costPicos: string) => ({ at, baseModelId, costPicos }) as CallRecord;
    const r = reconcile(
      "2026-10",
      [call("2026-10-03T23:59:59.000Z", "amazon.nova-pro-v1:0", "1000000000000"), call("2026-11-01T00:00:01.000Z", "amazon.nova-pro-v1:0", "5")],
      [
        { date: "2026-10-03", service: "Amazon Bedrock", usageType: "USE1-NovaPro-input-tokens", amountUsd: "0.4" },
        { date: "2026-10-03", service: "Amazon Bedrock", usageType: "USE1-NovaPro-output-tokens", amountUsd: "0.8" },
        { date: "2026-10-04", service: "Amazon Bedrock", usageType: "USE1-Widget-units", amountUsd: "0.1" },
      ],
      BUILT_IN_PRICES,
      () => "Amazon Nova Pro",
    );
    assert.deepEqual(
      r.lines.map((l) => [l.date, l.model, l.ledgerPicos, l.billPicos, l.driftPicos, l.driftPercent]),
      [
        ["2026-10-03", "Amazon Nova Pro", 1_000_000_000_000n, 1_200_000_000_000n, 200_000_000_000n, 16.7],
        ["2026-10-04", "unmapped usage type USE1-Widget-units", 0n, 100_000_000_000n, 100_000_000_000n, 100],
      ],
    );
    assert.equal(r.total.driftPicos, 300_000_000_000n);
  });

  it("Cohere Command R+ and Command R are billed on their own lines, each beside its own ledger spend", () => {
    const book = new PriceBook();
    const label = (id: string) => book.rates(id).displayName;
    const call = (baseModelId: string, costPicos: string) => ({ at: "2026-11-10T12:00:00.000Z", baseModelId, costPicos }) as CallRecord;
    const r = reconcile(
      "2026-11",
      [call("cohere.command-r-plus-v1:0", "18000000000000"), call("cohere.command-r-v1:0", "2000000000000")],
      [
        { date: "2026-11-10", service: "Cohere Command R+ (Amazon Bedrock Edition)", usageType: "USE1-MP:USE1_InputTokenCount-Units", amountUsd: "18" },
        { date: "2026-11-10", service: "Cohere Command R (Amazon Bedrock Edition)", usageType: "USE1-MP:USE1_InputTokenCount-Units", amountUsd: "2" },
      ],
      BUILT_IN_PRICES,
      label,
    );
    assert.deepEqual(
      r.lines.map((l) => [l.model, l.ledgerPicos, l.billPicos, l.driftPicos]),
      [
        ["Cohere Command R", 2_000_000_000_000n, 2_000_000_000_000n, 0n],
        ["Cohere Command R+", 18_000_000_000_000n, 18_000_000_000_000n, 0n],
      ],
    );
  });

  it("puts guardrail spend on one Guardrails line a day, beside the bill's guardrail usage types, not under the model whose call attached it", () => {
    const part = { id: "gr-1", costPicos: "300000000000", worstCasePicos: "500000000000", units: 6, unitsEstimated: false };
    const calls = [
      // $1.30 Nova Pro call, $0.30 of it its attached guardrail's.
      { at: "2026-10-03T10:00:00.000Z", operation: "Converse", baseModelId: "amazon.nova-pro-v1:0", costPicos: "1300000000000", worstCasePicos: "2000000000000", guardrail: part },
      // An ApplyGuardrail call, $0.05.
      { at: "2026-10-03T11:00:00.000Z", operation: "ApplyGuardrail", baseModelId: "guardrail/gr-1", costPicos: "50000000000", worstCasePicos: "50000000000" },
    ] as CallRecord[];
    const r = reconcile(
      "2026-10",
      calls,
      [
        { date: "2026-10-03", service: "Amazon Bedrock", usageType: "USE1-NovaPro-input-tokens", amountUsd: "0.4" },
        { date: "2026-10-03", service: "Amazon Bedrock", usageType: "USE1-NovaPro-output-tokens", amountUsd: "0.6" },
        { date: "2026-10-03", service: "Amazon Bedrock", usageType: "USE1-Guardrail-ContentPolicyUnitsConsumed", amountUsd: "0.2" },
        { date: "2026-10-03", service: "Amazon Bedrock", usageType: "USE1-Guardrail-TopicPolicyUnitsConsumed", amountUsd: "0.15" },
      ],
      BUILT_IN_PRICES,
      (id) => (id.startsWith("guardrail/") ? id : "Amazon Nova Pro"),
    );
    assert.deepEqual(
      r.lines.map((l) => [l.model, l.ledgerPicos, l.billPicos, l.driftPicos]),
      [
        ["Amazon Nova Pro", 1_000_000_000_000n, 1_000_000_000_000n, 0n],
        ["Guardrails", 350_000_000_000n, 350_000_000_000n, 0n],
      ],
    );
    assert.equal(r.total.driftPicos, 0n);
  });
});
