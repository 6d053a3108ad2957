// Open's read of the journal: readers of one source share a pass, and each is shown exactly the calls its own read would give.
import assert from "node:assert/strict";
import { joinReaders, readHistory, type CheckpointedHistory, type JournaledCall, type SettledReader } from "../../../server/budget/historyPass";

const call = (id: string, at: string): JournaledCall => ({ id, at, startedAt: at, costPicos: "1", modelId: "m", baseModelId: "m", user: "u", tags: {} });

// Six calls; the checkpoint was taken after the first four.
const CALLS = [
  call("feb", "2026-02-27T10:00:00.000Z"),
  call("mar1", "2026-03-01T00:00:00.000Z"),
  call("mar2-early", "2026-03-02T00:00:00.000Z"),
  call("mar2", "2026-03-02T04:00:00.000Z"),
  call("tail1", "2026-03-02T05:00:00.000Z"),
  call("tail2", "2026-03-02T05:10:00.000Z"),
];
const TAIL = CALLS.slice(4);

/** A journal that records each read: which source, and from when. */
function history(fromCheckpoint: boolean): CheckpointedHistory & { reads: string[] } {
  const reads: string[] = [];
  async function* from(calls: JournaledCall[], since: Date) {
    for (const c of calls) if (Date.parse(c.at) >= since.getTime()) yield c;
  }
  return {
    reads,
    fromCheckpoint,
    checkpointPart: () => undefined,
    settledSince(since) {
      reads.push(`whole from ${since.toISOString()}`);
      return from(CALLS, since);
    },
    settledSinceCheckpoint(since) {
      reads.push(`tail from ${since.toISOString()}`);
      return from(fromCheckpoint ? TAIL : CALLS, since);
    },
  };
}

function reader(since: string): SettledReader & { seen: string[] } {
  const seen: string[] = [];
  return { since: new Date(since), seen, settled: (c) => seen.push(c.id) };
}

describe("historyPass: open's one read of the journal", () => {
  it("without a checkpoint, reads the journal once from the earliest since, and each reader sees the calls from its own", async () => {
    const day = reader("2026-03-02T00:00:00.000Z");
    const month = reader("2026-03-01T00:00:00.000Z");
    const tail = reader("2026-03-02T04:00:00.000Z");
    const h = history(false);
    await readHistory(h, { whole: [day, month], pastCheckpoint: [tail] });
    assert.deepEqual(h.reads, ["whole from 2026-03-01T00:00:00.000Z"]);
    assert.deepEqual(month.seen, ["mar1", "mar2-early", "mar2", "tail1", "tail2"]);
    assert.deepEqual(day.seen, ["mar2-early", "mar2", "tail1", "tail2"], "a call journaled exactly at its since counts");
    assert.deepEqual(tail.seen, ["mar2", "tail1", "tail2"], "no checkpoint: past it is the whole journal");
  });

  it("with a checkpoint, readers of the whole journal and of its tail each share one pass of their source", async () => {
    const day = reader("2026-03-02T00:00:00.000Z");
    const month = reader("2026-03-01T00:00:00.000Z");
    const capsPast = reader("2026-03-02T00:00:00.000Z");
    const quotaPast = reader("2026-03-01T00:00:00.000Z");
    const h = history(true);
    await readHistory(h, { whole: [day, month], pastCheckpoint: [capsPast, quotaPast] });
    assert.deepEqual(h.reads, ["whole from 2026-03-01T00:00:00.000Z", "tail from 2026-03-01T00:00:00.000Z"]);
    assert.deepEqual(month.seen, ["mar1", "mar2-early", "mar2", "tail1", "tail2"]);
    assert.deepEqual(day.seen, ["mar2-early", "mar2", "tail1", "tail2"]);
    assert.deepEqual(capsPast.seen, ["tail1", "tail2"], "only the lines past the checkpoint: the rest came from it");
    assert.deepEqual(quotaPast.seen, ["tail1", "tail2"]);
  });

  it("reads no source that no reader wants", async () => {
    const h = history(true);
    await readHistory(h, { whole: [], pastCheckpoint: [reader("2026-03-01T00:00:00.000Z")] });
    assert.deepEqual(h.reads, ["tail from 2026-03-01T00:00:00.000Z"]);
    const none = history(false);
    await readHistory(none, { whole: [], pastCheckpoint: [] });
    assert.deepEqual(none.reads, []);
  });

  it("joins readers by source", () => {
    const [a, b, c, d] = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"].map(reader);
    assert.deepEqual(joinReaders({ whole: [a!], pastCheckpoint: [b!] }, { whole: [c!], pastCheckpoint: [d!] }), { whole: [a, c], pastCheckpoint: [b, d] });
  });
});
