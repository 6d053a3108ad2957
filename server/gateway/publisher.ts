/**
 * Tells listeners (event streams, the editor, metrics, alert checks) of settled calls after the
 * caller's answer, not on its path: records are queued and delivered together once per turn of
 * the event loop (setImmediate), so a burst of calls costs one status computation, not one each.
 */
import type { CallRecord } from "../ledger/types";

export class CallPublisher {
  private pending: CallRecord[] = [];

  constructor(
    /** Hears every queued record, in settlement order, once per turn. */
    private readonly deliver: (records: readonly CallRecord[]) => void,
    /** A listener that throws is logged: the call is journaled and answered already. */
    private readonly onError: (err: unknown) => void,
  ) {}

  publish(record: CallRecord): void {
    this.pending.push(record);
    if (this.pending.length === 1) setImmediate(() => this.flush());
  }

  /** Delivers what is queued now (also called at shutdown, so nothing queued is lost). */
  flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    try {
      this.deliver(batch);
    } catch (err) {
      this.onError(err);
    }
  }
}
