/**
 * Splits an event-stream byte stream into whole frames by their length prefix
 * (`[total length u32][headers length u32][prelude crc]…`). The codec decodes one whole frame
 * at a time; relaying whole frames is also what lets the gateway cut a stream cleanly.
 */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Returns every frame completed by this chunk, in order. */
  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Buffer[] = [];
    while (this.pendingBytes >= 4) {
      const head = this.pending.length === 1 ? this.pending[0]! : this.collapse();
      const total = head.readUInt32BE(0);
      if (total < 16 || total > MAX_FRAME_BYTES) throw new Error(`event-stream frame of ${total} bytes is not valid`);
      if (this.pendingBytes < total) break;
      const all = this.collapse();
      frames.push(all.subarray(0, total));
      const rest = all.subarray(total);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
    }
    return frames;
  }

  /** Bytes received that do not yet form a whole frame. */
  get leftover(): number {
    return this.pendingBytes;
  }

  private collapse(): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [all];
    return all;
  }
}
