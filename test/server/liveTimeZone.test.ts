// The time zone changed in the settings while the gateway runs: the personal caps' windows move to the new zone at once
// (as after a restart), the spend of the new window counts, a call running through the change counts once, and today's totals
// are the new zone's day.
import assert from "node:assert/strict";
import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { validated } from "../../server/config/load";
import { API_PATHS, type StatusResponse } from "../../server/protocol";
import { anthropicBody, CREDENTIALS, SONNET_45, startHarness, type Harness } from "../support/harness";

/** Input free, output $15 per 1M tokens: 500 output tokens cost $0.0075, 1,000 $0.015, a worst case of 1,500 $0.0225. */
const PRICING = { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } };
const CAPS = [{ id: "daily", window: "day" as const, limitUsd: 0.04 }];
// Kiritimati is UTC+14: its 23 November runs from 22 November 10:00Z to 23 November 10:00Z.
const KIRITIMATI = "Pacific/Kiritimati";

describe("gateway: the time zone changed while it runs", function () {
  this.timeout(30_000);
  let h: Harness;
  let clock = 0;
  const clients: BedrockRuntimeClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await h?.close();
  });

  const settings = (timeZone: string) =>
    validated({ port: 0, upstreamEndpoint: h.fake.url, ledgerDir: h.ledgerDir, user: "tester", timeZone, pricing: PRICING, caps: CAPS }, "test");
  const status = async () => (await (await fetch(`${h.gateway.url}${API_PATHS.status}`)).json()) as StatusResponse;
  const daily = async () => {
    const c = (await status()).caps.find((x) => x.id === "daily")!;
    return { windowStart: c.windowStart, resetsAt: c.resetsAt, spent: c.spentExact, reserved: c.reservedExact };
  };
  /** A call at the gateway's clock (SigV4 dates are checked against it), asking for up to `maxTokens` output tokens. */
  const invokeAt = (iso: string, maxTokens: number) => {
    clock = Date.parse(iso);
    const client = new BedrockRuntimeClient({ region: "us-east-1", endpoint: h.gateway.url, credentials: CREDENTIALS, systemClockOffset: clock - Date.now() });
    clients.push(client);
    return client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", maxTokens) }));
  };
  const refused = (err: Error) => {
    assert.equal(err.name, "ServiceQuotaExceededException");
    assert.match(err.message, /cap "daily" \(personal, day\) has \$0\.02 spent and \$0\.00 reserved of \$0\.04\. The cap resets at 2026-11-24 00:00 Pacific\/Kiritimati\./);
    return true;
  };

  it("moves the day cap to the new zone's day at once: the spend of that day counts, a running call counts once, and the cap refuses and admits by that day", async () => {
    clock = Date.parse("2026-11-22T09:00:00Z");
    h = await startHarness({ caps: CAPS, pricing: PRICING, timeZone: "UTC" }, { now: () => new Date(clock) });
    h.fake.behave(() => ({ kind: "ok", usage: { input: 5, output: 1000 } }));
    await invokeAt("2026-11-22T09:00:00Z", 1000); // $0.015, the UTC day's, before Kiritimati's 23 November starts
    h.fake.behave(() => ({ kind: "ok", usage: { input: 5, output: 500 } }));
    await invokeAt("2026-11-22T11:00:00Z", 1000); // in both days
    const held = h.fake.holdCalls({ input: 5, output: 500 });
    const running = invokeAt("2026-11-22T11:30:00Z", 1000); // $0.015 held while it runs
    await held.reached;
    assert.deepEqual(await daily(), { windowStart: "2026-11-22T00:00:00.000Z", resetsAt: "2026-11-23T00:00:00.000Z", spent: "0.0225", reserved: "0.015" });

    clock = Date.parse("2026-11-22T12:00:00Z");
    // Today's totals move once the ledger has re-read the journal, and the event stream is told.
    const todayMoved = new Promise<void>((resolve) => {
      const seen = (s: StatusResponse) => {
        if (s.today.costExact !== "0.015") return; // Kiritimati's day with the running call settled (UTC's holds $0.0225, then $0.03)
        h.gateway.api.events.off("status", seen);
        resolve();
      };
      h.gateway.api.events.on("status", seen);
    });
    await h.gateway.reconfigure(settings(KIRITIMATI));
    assert.equal((await status()).timeZone, KIRITIMATI);
    // Only the 11:00Z call is in Kiritimati's day; the running call is held on it.
    assert.deepEqual(await daily(), { windowStart: "2026-11-22T10:00:00.000Z", resetsAt: "2026-11-23T10:00:00.000Z", spent: "0.0075", reserved: "0.015" });
    held.answer();
    await running;
    assert.deepEqual(await daily(), { windowStart: "2026-11-22T10:00:00.000Z", resetsAt: "2026-11-23T10:00:00.000Z", spent: "0.015", reserved: "0" }, "the running call counts once");
    // Today's totals are Kiritimati's 23 November too: the 11:00Z call and the one that was running.
    await todayMoved;
    assert.deepEqual((await status()).today, { calls: 2, costUsd: 0.015, costExact: "0.015" });

    // $0.015 spent + a $0.0225 worst case fits $0.04 (UTC's day, with $0.03 spent, would refuse it).
    h.fake.behave(() => ({ kind: "ok", usage: { input: 5, output: 500 } }));
    await invokeAt("2026-11-22T12:00:00Z", 1500);
    assert.equal((await daily()).spent, "0.0225");
    await h.restart(settings(KIRITIMATI));
    assert.deepEqual(await daily(), { windowStart: "2026-11-22T10:00:00.000Z", resetsAt: "2026-11-23T10:00:00.000Z", spent: "0.0225", reserved: "0" }, "a restart counts the same");
    assert.deepEqual((await status()).today, { calls: 3, costUsd: 0.0225, costExact: "0.0225" });

    // A new day in UTC, still 23 November in Kiritimati: refused, until Kiritimati's midnight.
    await assert.rejects(invokeAt("2026-11-23T09:00:00Z", 1500), refused);
    await invokeAt("2026-11-23T10:00:00Z", 1500);
    assert.deepEqual(await daily(), { windowStart: "2026-11-23T10:00:00.000Z", resetsAt: "2026-11-24T10:00:00.000Z", spent: "0.0075", reserved: "0" });
    assert.equal(h.fake.hits.length, 5, "the refused call never reached Bedrock");
  });
});
