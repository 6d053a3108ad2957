// The admission gate: calls wait while the journal is counted into a fresh cap or quota, and are refused for good if that count fails.
import assert from "node:assert/strict";
import { AdmissionGate } from "../../../server/gateway/admissionGate";

/** A count the test finishes (or fails) when it chooses. */
function pendingCount() {
  let finish!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return { count: () => done, finish, fail };
}

describe("gateway/admissionGate", () => {
  it("is open until a count starts, shut from the moment it starts (same turn) until it is done", async () => {
    const gate = new AdmissionGate();
    assert.equal(gate.open, true);
    assert.equal(await gate.passed(), undefined);
    const c = pendingCount();
    const counted = gate.shutWhile(c.count);
    assert.equal(gate.open, false);
    let through = false;
    const waiting = gate.passed().then((failure) => {
      through = true;
      return failure;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(through, false, "a call waits while the count runs");
    c.finish();
    await counted;
    assert.equal(await waiting, undefined);
    assert.equal(gate.open, true);
  });

  it("counts started meanwhile run one after the other, and the gate opens only after the last", async () => {
    const gate = new AdmissionGate();
    const first = pendingCount();
    const second = pendingCount();
    const order: string[] = [];
    const a = gate.shutWhile(async () => {
      order.push("first started");
      await first.count();
      order.push("first done");
    });
    const b = gate.shutWhile(async () => {
      order.push("second started");
      await second.count();
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ["first started"]);
    first.finish();
    await a;
    await new Promise((r) => setImmediate(r));
    assert.equal(gate.open, false, "the second count still runs");
    assert.deepEqual(order, ["first started", "first done", "second started"]);
    second.finish();
    await b;
    assert.equal(gate.open, true);
  });

  it("a count that fails keeps the gate shut and names why; later counts still run, the failure stays", async () => {
    const gate = new AdmissionGate();
    const c = pendingCount();
    const counted = gate.shutWhile(c.count);
    const waiting = gate.passed();
    c.fail(new Error("EIO: i/o error, read"));
    await assert.rejects(counted, /EIO/);
    assert.equal(await waiting, "EIO: i/o error, read");
    assert.equal(gate.open, false);
    let ran = false;
    await gate.shutWhile(async () => {
      ran = true;
    });
    assert.equal(ran, true);
    assert.equal(gate.open, false);
    assert.equal(await gate.passed(), "EIO: i/o error, read");
  });
});
