// The admission gate shut for good (a count of the journal failed): its refusals are journaled like every other.
import assert from "node:assert/strict";
import { mkdir, readFile, rename, rmdir } from "node:fs/promises";
import path from "node:path";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { validated } from "../../server/config/load";
import { journalMonth } from "../../server/ledger/journal";
import type { CallRecord } from "../../server/ledger/types";
import { anthropicBody, SONNET_45, startHarness, type Harness } from "../support/harness";

const PRICING = { [SONNET_45]: { inputPer1M: 0, outputPer1M: 15 } };

describe("gateway: calls refused while the admission gate is shut for good", function () {
  this.timeout(60_000);
  let h: Harness;
  afterEach(() => h?.close());

  it("journals and publishes each refused call ($0, 503, the reason), naming no caller the quota recount would count", async () => {
    h = await startHarness({ pricing: PRICING });
    const settings = (extra: object) => validated({ port: 0, upstreamEndpoint: h.fake.url, ledgerDir: h.ledgerDir, user: "tester", timeZone: "UTC", pricing: PRICING, ...extra }, "test");
    const invoke = () => h.client.send(new InvokeModelCommand({ modelId: SONNET_45, body: anthropicBody("hi", 100) }));
    await invoke();
    const file = path.join(h.ledgerDir, "journal", `${journalMonth(new Date())}.jsonl`);
    // The month's journal cannot be read (a folder stands where the file was); the gateway appends to the file it has open.
    await rename(file, `${file}.aside`);
    await mkdir(file);
    await assert.rejects(h.gateway.reconfigure(settings({ caps: [{ id: "month", window: "month", limitUsd: 10 }] })), /EISDIR/);
    const published: CallRecord[] = [];
    h.gateway.onCall((record) => published.push(record));
    await assert.rejects(invoke(), { name: "ServiceUnavailableException" });
    await new Promise((r) => setTimeout(r, 50));
    // The SDK retries a 503: every attempt is a refused call the call log and the Refused tile show.
    assert.ok(published.length >= 1, "the editor and the dashboard hear of the refusal");
    for (const record of published) {
      assert.equal(record.outcome, "refused");
      assert.equal(record.status, 503);
      assert.equal(record.costPicos, "0");
      assert.match(record.message ?? "", /failed: EISDIR.*Calls are refused until the gateway restarts/);
      assert.equal(record.caller, undefined, "not counted by the usage plan, so not by a restart's recount either");
    }
    await rmdir(file);
    await rename(`${file}.aside`, file);
    const journaled = (await readFile(file, "utf8")).trim().split("\n").map((line) => JSON.parse(line) as CallRecord);
    const refused = journaled.filter((r) => r.type === "settle" && r.outcome === "refused");
    assert.deepEqual(refused.map((r) => r.id).sort(), published.map((r) => r.id).sort(), "each refusal is in the journal");
  });
});
