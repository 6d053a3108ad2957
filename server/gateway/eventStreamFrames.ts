/**
 * Splits an event-stream byte stream into whole frames by their length prefix
 * (`[total length u32][headers length u32][prelude crc]…`) and decodes one frame, checking what
 * the codec leaves unchecked. Relaying whole frames is also what lets the gateway cut a stream cleanly.
 */
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";

export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Prelude (total length, headers length, prelude CRC) plus the trailing message CRC. */
const FRAME_OVERHEAD = 16;

const codec = new EventStreamCodec(toUtf8, fromUtf8);

export type FrameMessage = ReturnType<EventStreamCodec["decode"]>;

/** Upstream bytes that are not a readable event-stream frame; the message names the fault. */
export class FrameError extends Error {}

export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private broken: FrameError | undefined;
  /** The length prefix of the frame being gathered, once read (it may arrive split across chunks). */
  private frameLength: number | undefined;

  /**
   * Returns every frame completed by this chunk, in order. Bytes that cannot start a frame set
   * `fault` (the frames before them are still returned: they may hold the final usage) and
   * nothing after them is ever read.
   */
  push(chunk: Buffer): Buffer[] {
    if (this.broken) return [];
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Buffer[] = [];
    while (this.pendingBytes >= 4) {
      const total = (this.frameLength ??= this.nextLength());
      if (total < FRAME_OVERHEAD || total > MAX_FRAME_BYTES) {
        this.broken = new FrameError(`event-stream frame of ${total} bytes is not valid`);
        break;
      }
      // Joined only once the frame is whole: a 16 MB frame in small chunks is copied once, not per chunk.
      if (this.pendingBytes < total) break;
      const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
      this.frameLength = undefined;
      frames.push(all.subarray(0, total));
      const rest = all.subarray(total);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
    }
    return frames;
  }

  /** Why the stream stopped being readable, once it has; frames returned before it are good. */
  get fault(): FrameError | undefined {
    return this.broken;
  }

  /** Bytes received that do not yet form a whole frame. */
  get leftover(): number {
    return this.pendingBytes;
  }

  /** The next frame's length prefix, read across chunks without joining them. */
  private nextLength(): number {
    const first = this.pending[0]!;
    return (first.length >= 4 ? first : Buffer.concat(this.pending, 4)).readUInt32BE(0);
  }
}

const MESSAGE_TYPES = new Set(["event", "exception", "error"]);
/** The header a client reads to know each message type's event or error. */
const NEEDED_HEADER = { event: ":event-type", exception: ":exception-type", error: ":error-code" } as const;

/**
 * Decodes one whole frame (as FrameSplitter returns them): both CRCs, lengths that fit the frame,
 * and a message type a client can read. Throws FrameError naming what is wrong.
 */
export function decodeFrame(frame: Uint8Array): FrameMessage {
  if (frame.byteLength < FRAME_OVERHEAD) throw new FrameError(`event-stream frame of ${frame.byteLength} bytes is too short`);
  // The codec does not check that the headers fit the frame.
  const headersLength = ((frame[4]! << 24) | (frame[5]! << 16) | (frame[6]! << 8) | frame[7]!) >>> 0; // big-endian u32, read without a Buffer view per frame
  if (headersLength > frame.byteLength - FRAME_OVERHEAD) {
    throw new FrameError(`event-stream frame of ${frame.byteLength} bytes claims ${headersLength} bytes of headers`);
  }
  let message: FrameMessage;
  try {
    // A copy with its own exactly-sized memory: the codec reads header values through the frame's
    // backing buffer, so a lying header length must fail here rather than read a neighbour's bytes.
    message = codec.decode(new Uint8Array(frame));
  } catch (err) {
    throw new FrameError(`event-stream frame could not be decoded: ${(err as Error).message}`);
  }
  const type = message.headers[":message-type"]?.value;
  if (typeof type !== "string" || !MESSAGE_TYPES.has(type)) {
    throw new FrameError(`event-stream frame has ${typeof type === "string" ? `message type "${type.slice(0, 40)}"` : "no message type"}`);
  }
  // What a client reads to know the event or error: without it the SDKs fail with a TypeError.
  const needed = NEEDED_HEADER[type as "event" | "exception" | "error"];
  if (typeof message.headers[needed]?.value !== "string") throw new FrameError(`event-stream ${type} has no ${needed} header`);
  return message;
}

/** Encodes one frame (the gateway's own in-stream exceptions). */
export function encodeFrame(message: Parameters<EventStreamCodec["encode"]>[0]): Buffer {
  return Buffer.from(codec.encode(message));
}
