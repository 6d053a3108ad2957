/**
 * Holds calls back while the gateway counts the journal into totals that have just started from
 * zero: a cap or a request quota added or changed in the settings while it runs. A call decided
 * on a partial count could pass a limit already reached, so calls wait at the gate until the count
 * is done (it reads at most a month of the journal). If the count fails, those totals stay partial:
 * the gate stays shut and every call is refused until the gateway restarts, as its start counts
 * the journal again (or fails to start, saying why).
 */
export class AdmissionGate {
  private counting: Promise<void> | undefined;
  private failed: string | undefined;

  /** True when calls may be decided now: the usual case, checked without waiting on the hot path. */
  get open(): boolean {
    return this.counting === undefined && this.failed === undefined;
  }

  /**
   * Shuts the gate, synchronously, until `count` is done; counts started meanwhile queue behind it.
   * Resolves once it is done; rejects (and the gate stays shut) when it fails.
   */
  shutWhile(count: () => Promise<void>): Promise<void> {
    const reopen = () => {
      if (this.counting === shut) this.counting = undefined; // no later count queued behind this one
    };
    const run = (this.counting ?? Promise.resolve()).then(count).then(reopen, (err: unknown) => {
      this.failed ??= err instanceof Error ? err.message : String(err);
      reopen();
      throw err;
    });
    const shut: Promise<void> = run.then(
      () => undefined,
      () => undefined,
    );
    this.counting = shut;
    return run;
  }

  /** Why calls are refused for good: a count failed (undefined while none has). */
  get failure(): string | undefined {
    return this.failed;
  }

  /** Waits while a count runs; then undefined, or why calls are refused (a count failed). */
  async passed(): Promise<string | undefined> {
    while (this.counting) await this.counting;
    return this.failed;
  }
}
