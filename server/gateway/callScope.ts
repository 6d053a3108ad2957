/**
 * What one Bedrock request has under way: its metered call, its exchange with the upstream, and
 * any relay that knows better how to stop it. The gateway opens one per request and hands it down
 * (the handler, the metered call, the upstream exchange), so a gateway that must stop can settle
 * and cut its calls.
 */
import type { EventEmitter } from "node:events";
import type { MeteredCall } from "./meteredCall";

/** Raised into a call the gateway stops while shutting down. */
export class GatewayShutdown extends Error {
  override name = "GatewayShutdown";
}

type Exchange = EventEmitter & { destroy(error?: Error): unknown };
type StopHook = (reason: GatewayShutdown) => Promise<unknown>;

export class CallScope {
  private readonly calls = new Set<MeteredCall>();
  private readonly exchanges = new Set<Exchange>();
  private readonly hooks = new Set<StopHook>();
  private reason: GatewayShutdown | undefined;
  private readonly receivedAt = process.hrtime.bigint();
  private forwarded = false;

  /** `onForward`: told once, when the request first leaves for the upstream, how long admitting it took (metrics). */
  constructor(private readonly onForward?: (seconds: number) => void) {}

  /** The request leaves for the upstream now: reports the time since it arrived, once. */
  forwarding(): void {
    if (this.forwarded) return;
    this.forwarded = true;
    this.onForward?.(Number(process.hrtime.bigint() - this.receivedAt) / 1e9);
  }

  /** Set once the scope was stopped: nothing new may leave for the upstream. */
  get stopped(): GatewayShutdown | undefined {
    return this.reason;
  }

  adopt(call: MeteredCall): void {
    this.calls.add(call);
  }

  /** An upstream request or response; destroyed when the scope stops. */
  track(exchange: Exchange): void {
    this.exchanges.add(exchange);
    exchange.once("close", () => this.exchanges.delete(exchange));
  }

  /** A relay's own way to stop (it knows what was delivered); returns a disposer. */
  onStop(hook: StopHook): () => void {
    this.hooks.add(hook);
    return () => this.hooks.delete(hook);
  }

  /**
   * Stops the call: relays settle what they know first, any call still unsettled is settled at its
   * worst case as "interrupted" (settlement is exactly once, so the later attempts of the cut
   * handlers change nothing), then the upstream exchange is destroyed. Resolves once journaled.
   */
  async stop(message: string): Promise<void> {
    this.reason ??= new GatewayShutdown(message);
    const reason = this.reason;
    const settling: Promise<unknown>[] = [...this.hooks].map((hook) => hook(reason));
    for (const call of this.calls) settling.push(call.settleAtWorstCase("interrupted", 502, message));
    for (const exchange of this.exchanges) exchange.destroy(reason);
    await Promise.allSettled(settling);
  }
}
