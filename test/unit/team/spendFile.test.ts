import assert from "node:assert/strict";
import { addSpend, othersSpend, parseSpendFile, pruneSpend, spendFileName, toSpendFile, type SpendTotals } from "../../../server/team/spendFile";

describe("team: spend files", () => {
  const june = new Date("2025-06-01T00:00:00.000Z");
  const may = new Date("2025-05-01T00:00:00.000Z");
  const april = new Date("2025-04-01T00:00:00.000Z");

  it("round-trips exact pico-dollar totals per cap and window", () => {
    const totals: SpendTotals = new Map();
    addSpend(totals, "team-month", june, 10_500_000_000n);
    addSpend(totals, "team-month", june, 1n);
    addSpend(totals, "team-month", may, 7n);
    const file = toSpendFile({ writer: "w1", member: "alice", machine: "laptop" }, totals, new Date("2025-06-03T10:00:00Z"));
    assert.deepEqual(file.caps, { "team-month": { "2025-05-01T00:00:00.000Z": "7", "2025-06-01T00:00:00.000Z": "10500000001" } });
    const parsed = parseSpendFile(JSON.stringify(file));
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.file, file);
  });

  it("refuses a malformed file with the field named", () => {
    const r = parseSpendFile(JSON.stringify({ version: 1, writer: "w", member: "m", machine: "h", updatedAt: "2025-06-01T00:00:00Z", caps: { a: { "2025-06-01T00:00:00.000Z": "1.5" } } }));
    assert.ok(!r.ok);
    assert.match(r.error, /caps\.a\.2025-06-01T00:00:00\.000Z/);
    assert.ok(!parseSpendFile("{").ok);
  });

  it("takes figures of up to 30 digits ($10^18); a longer one makes the file broken, as any figure that is not whole pico-dollars", () => {
    const file = (v: string) => JSON.stringify({ version: 1, writer: "w", member: "m", machine: "h", updatedAt: "2025-06-01T00:00:00Z", caps: { a: { "2025-06-01T00:00:00.000Z": v } } });
    const thirty = parseSpendFile(file("9".repeat(30)));
    assert.ok(thirty.ok);
    assert.equal(othersSpend([thirty.file], "me", "a", june), 10n ** 30n - 1n);
    for (const v of [`1${"0".repeat(30)}`, "-1", "1e3", ""]) {
      const r = parseSpendFile(file(v));
      assert.ok(!r.ok, v);
      assert.equal(r.error, "caps.a.2025-06-01T00:00:00.000Z: a whole number of pico-dollars as a decimal string", v);
    }
  });

  it("sums the other writers' spend of one window, never the own", () => {
    const at = new Date("2025-06-03T00:00:00Z");
    const f = (writer: string, v: string) => toSpendFile({ writer, member: writer, machine: "h" }, new Map([["c", new Map([[june.toISOString(), BigInt(v)]])]]), at);
    const files = [f("a", "100"), f("b", "23"), f("me", "1000")];
    assert.equal(othersSpend(files, "me", "c", june), 123n);
    assert.equal(othersSpend(files, "me", "c", may), 0n);
    assert.equal(othersSpend(files, "me", "other", june), 0n);
  });

  it("counts one file per writer, its newest (a writer whose host or user name changed left its former file)", () => {
    const f = (writer: string, v: string, at: string) => toSpendFile({ writer, member: writer, machine: at }, new Map([["c", new Map([[june.toISOString(), BigInt(v)]])]]), new Date(at));
    const files = [f("a", "100", "2025-06-03T10:00:00Z"), f("a", "90", "2025-06-02T10:00:00Z"), f("b", "23", "2025-06-01T10:00:00Z"), f("me", "1", "2025-06-03T10:00:00Z"), f("me", "2", "2025-06-04T10:00:00Z")];
    assert.equal(othersSpend(files, "me", "c", june), 123n);
    assert.equal(othersSpend([files[1]!, files[0]!, files[2]!], "me", "c", june), 123n, "whatever the order the files were read in");
  });

  it("prunes windows older than the previous one", () => {
    const totals: SpendTotals = new Map([["c", new Map([[april.toISOString(), 1n], [may.toISOString(), 2n], [june.toISOString(), 3n]])]]);
    pruneSpend(totals, () => may);
    assert.deepEqual([...totals.get("c")!.keys()], [may.toISOString(), june.toISOString()]);
  });

  it("names a file by member, machine and writer id, safe for any file system", () => {
    assert.equal(spendFileName("a lice/x", "host:1", "0123456789abcdef"), "a_lice_x@host_1-0123456789ab.json");
  });
});
