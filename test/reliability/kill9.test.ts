/**
 * 20 × `kill -9` of the gateway process at random moments under load, restarting it each time on
 * the same ledger: the ledger always opens, every call is settled exactly once (none lost, none
 * counted twice), what callers saw answered is in the journal, and nothing stays reserved; under
 * both journal durabilities ("process": written before the call moves on, "machine": synced).
 */
import assert from "node:assert/strict";
import { InvokeModelCommand, InvokeModelWithResponseStreamCommand, type BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import { FakeBedrock } from "../support/fakeBedrock";
import { anthropicBody, CREDENTIALS } from "../support/harness";
import { cleanup, decimalToPicos, GatewayProcess, HAIKU_3, readJournal, sdkClient, tempDir, utcWindowStart } from "./support";

const CYCLES = 20;
const LANES = 12;

interface Answered {
  requestId: string;
  stream: boolean;
}

/** One caller that keeps calling until told to stop; returns the calls it saw answered in full. */
async function lane(client: BedrockRuntimeClient, n: number, stopped: () => boolean): Promise<Answered[]> {
  const answered: Answered[] = [];
  for (let i = 0; !stopped(); i++) {
    try {
      if ((n + i) % 2 === 0) {
        const out = await client.send(new InvokeModelCommand({ modelId: HAIKU_3, body: anthropicBody(`call ${n}.${i}`, 100) }));
        answered.push({ requestId: out.$metadata.requestId!, stream: false });
      } else {
        const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: HAIKU_3, body: anthropicBody(`stream ${n}.${i}`, 100) }));
        // Complete only with its last chunk: the SDK may end the iteration quietly when the connection dies.
        let complete = false;
        for await (const part of out.body!) {
          if (part.chunk?.bytes && Buffer.from(part.chunk.bytes).toString("utf8").includes("amazon-bedrock-invocationMetrics")) complete = true;
        }
        if (complete) answered.push({ requestId: out.$metadata.requestId!, stream: true });
      }
    } catch {
      // The gateway died under this call; the journal decides what it cost.
    }
  }
  return answered;
}

for (const durability of ["process", "machine"] as const) {
  describe(`reliability: kill -9 under load (durability ${durability})`, function () {
    this.timeout(240_000);
    let fake: FakeBedrock;
    let dir: string;
    let gateway: GatewayProcess | undefined;

    before(async () => {
      fake = await FakeBedrock.start({ credentials: CREDENTIALS });
      // Streams last ~200 ms, so a kill often lands mid-stream; buffered calls are quick.
      fake.behave(() => ({ kind: "ok", usage: { input: 10, output: 50 }, chunks: 10, chunkDelayMs: 20 }));
      dir = await tempDir("kill9");
    });
    after(async () => {
      await gateway?.stop();
      await fake?.close();
      await cleanup(dir);
    });

    it(`${CYCLES} kill -9 at random moments: the ledger always opens, every call settles exactly once, nothing stays reserved`, async () => {
      const answered: Answered[] = [];
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        if (gateway) await gateway.start().catch((err: Error) => assert.fail(`restart ${cycle}: the ledger did not open: ${err.message}`));
        else gateway = await GatewayProcess.start({ dir, upstream: fake.url, config: { caps: [{ id: "month", window: "month", limitUsd: 1000 }], durability } });
        const client = sdkClient(gateway.url);
        let stop = false;
        const lanes = Array.from({ length: LANES }, (_, n) => lane(client, n, () => stop));
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 1200));
        await gateway.kill9();
        stop = true;
        for (const ids of await Promise.all(lanes)) answered.push(...ids);
        client.destroy();
      }
      await gateway!.start();
      const status = await gateway!.idle();

      const journal = await readJournal(gateway!.ledgerDir);
      const reserved = new Set(journal.filter((e) => e.type === "reserve").map((e) => e.id));
      const settles = journal.filter((e) => e.type === "settle");
      const times = new Map<string, number>();
      for (const s of settles) times.set(s.id, (times.get(s.id) ?? 0) + 1);
      const twice = [...times].filter(([, n]) => n > 1).map(([id]) => id);
      assert.deepEqual(twice, [], "no call is settled twice");
      const unsettled = [...reserved].filter((id) => !times.has(id));
      assert.deepEqual(unsettled, [], "every reservation is settled (after a crash, as interrupted)");
      const ok = new Map(settles.filter((s) => s.outcome === "ok" && s.requestId).map((s) => [s.requestId!, s]));
      // A buffered call is journaled before its answer is sent: each one answered is settled ok.
      const lost = answered.filter((a) => !a.stream && !ok.has(a.requestId)).map((a) => a.requestId);
      assert.deepEqual(lost, [], "every buffered call a caller saw answered is settled ok in the journal");
      // A stream's last frame goes out before it settles; killed in between, the caller has every
      // frame and the journal has the call as interrupted, at its worst case (never less).
      const streamsNotOk = answered.filter((a) => a.stream && !ok.has(a.requestId)).length;
      const interruptedStreams = settles.filter((s) => s.outcome === "interrupted" && s.operation === "InvokeModelWithResponseStream").length;
      assert.ok(streamsNotOk <= interruptedStreams, `${streamsNotOk} answered streams are not settled ok, but only ${interruptedStreams} were interrupted`);

      const total = settles.reduce((sum, s) => sum + BigInt(s.costPicos), 0n);
      const distinct = new Map(settles.map((s) => [s.id, BigInt(s.costPicos)]));
      assert.equal(total, [...distinct.values()].reduce((a, b) => a + b, 0n), "the journal's total is the sum over distinct calls");
      const monthStart = utcWindowStart("month").getTime();
      const inMonth = settles.filter((s) => Date.parse(s.startedAt) >= monthStart).reduce((sum, s) => sum + BigInt(s.costPicos), 0n);
      assert.equal(decimalToPicos(status.caps[0]!.spentExact), inMonth, "the restarted gateway counts exactly what the journal holds");
      assert.equal(decimalToPicos(status.caps[0]!.reservedExact), 0n, "no reservation left behind");
      assert.equal(status.inFlight, 0);
      const interrupted = settles.filter((s) => s.outcome === "interrupted").length;
      console.log(`      ${answered.length} calls answered, ${settles.length} settled (${interrupted} interrupted) over ${CYCLES} kills`);
      assert.ok(answered.length > 0, "the load reached the gateway");
    });
  });
}
