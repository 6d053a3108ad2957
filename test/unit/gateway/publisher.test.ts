/** CallPublisher: settled calls reach listeners after the answer, in order, together once per turn; nothing is lost at shutdown. */
import assert from "node:assert/strict";
import { CallPublisher } from "../../../server/gateway/publisher";
import type { CallRecord } from "../../../server/protocol";
import { settledCall } from "../../support/records";

const record = (id: string): CallRecord => settledCall({ id });

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("gateway: call publisher", () => {
  it("delivers the calls settled in one turn together, in order, after the turn (not while the settling code runs)", async () => {
    const batches: string[][] = [];
    const publisher = new CallPublisher((records) => batches.push(records.map((r) => r.id)), (err) => assert.fail(String(err)));
    publisher.publish(record("a"));
    publisher.publish(record("b"));
    await Promise.resolve();
    assert.deepEqual(batches, [], "nothing is delivered on the settling code's path");
    publisher.publish(record("c"));
    await nextTurn();
    assert.deepEqual(batches, [["a", "b", "c"]]);
    publisher.publish(record("d"));
    await nextTurn();
    assert.deepEqual(batches, [["a", "b", "c"], ["d"]]);
  });

  it("flush() delivers what is queued at once (shutdown) and the turn's delivery then finds nothing", async () => {
    const batches: string[][] = [];
    const publisher = new CallPublisher((records) => batches.push(records.map((r) => r.id)), (err) => assert.fail(String(err)));
    publisher.publish(record("a"));
    publisher.flush();
    assert.deepEqual(batches, [["a"]]);
    await nextTurn();
    assert.deepEqual(batches, [["a"]]);
  });

  it("a listener that throws is reported, and later calls are still delivered", async () => {
    const errors: string[] = [];
    const seen: string[] = [];
    const publisher = new CallPublisher((records) => {
      seen.push(...records.map((r) => r.id));
      if (seen.length === 1) throw new Error("listener broke");
    }, (err) => errors.push((err as Error).message));
    publisher.publish(record("a"));
    await nextTurn();
    publisher.publish(record("b"));
    await nextTurn();
    assert.deepEqual(errors, ["listener broke"]);
    assert.deepEqual(seen, ["a", "b"]);
  });
});
