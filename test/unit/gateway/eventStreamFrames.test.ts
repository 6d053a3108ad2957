import assert from "node:assert/strict";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { crc32 } from "node:zlib";
import { decodeFrame, FrameError, FrameSplitter, MAX_FRAME_BYTES } from "../../../server/gateway/eventStreamFrames";
import { corruptFrame } from "../../support/fakeBedrock";

const codec = new EventStreamCodec(toUtf8, fromUtf8);

function chunkEvent(i: number, text: string): Buffer {
  const model = Buffer.from(JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } })).toString("base64");
  return Buffer.from(
    codec.encode({
      headers: {
        ":event-type": { type: "string", value: "chunk" },
        ":content-type": { type: "string", value: "application/json" },
        ":message-type": { type: "string", value: "event" },
      },
      body: fromUtf8(JSON.stringify({ bytes: model, p: "abcdefghijklmnopqrstuvwxyz".slice(0, i % 26) })),
    }),
  );
}

function exceptionEvent(): Buffer {
  return Buffer.from(
    codec.encode({
      headers: {
        ":exception-type": { type: "string", value: "throttlingException" },
        ":content-type": { type: "string", value: "application/json" },
        ":message-type": { type: "string", value: "exception" },
      },
      body: fromUtf8(JSON.stringify({ message: "Too many requests" })),
    }),
  );
}

function emptyEvent(): Buffer {
  return Buffer.from(codec.encode({ headers: {}, body: new Uint8Array(0) })); // the smallest frame: 16 bytes
}

/** Feeds `bytes` to a fresh splitter cut at `cuts`, returning every frame it produced. */
function feed(bytes: Buffer, cuts: number[]): { frames: Buffer[]; leftover: number } {
  const splitter = new FrameSplitter();
  const frames: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    frames.push(...splitter.push(bytes.subarray(from, cut)));
    from = cut;
  }
  return { frames, leftover: splitter.leftover };
}

/** The splitter's fault message, read through a call so an earlier assertion does not narrow it away. */
const faultOf = (splitter: FrameSplitter): string => splitter.fault?.message ?? "";

/** Decodes frames with the codec (which needs exactly one whole frame each) to what a client reads. */
function decoded(frames: Buffer[]): Array<{ type: string; body: string }> {
  return frames.map((f) => {
    const m = codec.decode(f);
    const type = m.headers[":event-type"]?.value ?? m.headers[":exception-type"]?.value ?? "";
    return { type: String(type), body: toUtf8(m.body) };
  });
}

describe("eventStreamFrames: FrameSplitter", () => {
  const events = [chunkEvent(0, "Hello"), emptyEvent(), chunkEvent(7, ", wor"), chunkEvent(25, "ld!".repeat(50)), exceptionEvent()];
  const stream = Buffer.concat(events);
  const expected = decoded(events);

  it("returns each whole frame when they arrive one per chunk", () => {
    const splitter = new FrameSplitter();
    const frames = events.flatMap((e) => splitter.push(e));
    assert.deepEqual(decoded(frames), expected);
    assert.equal(splitter.leftover, 0);
  });

  it("returns several frames from one chunk, in order", () => {
    const { frames, leftover } = feed(stream, []);
    assert.equal(frames.length, events.length);
    frames.forEach((f, i) => assert.ok(f.equals(events[i]!), `frame ${i} differs`));
    assert.deepEqual(decoded(frames), expected);
    assert.equal(leftover, 0);
  });

  it("reassembles frames arriving byte by byte, returning each as soon as its last byte arrives", () => {
    const splitter = new FrameSplitter();
    const frames: Buffer[] = [];
    let boundary = 0;
    const ends = events.map((e) => (boundary += e.length));
    for (let i = 0; i < stream.length; i++) {
      const out = splitter.push(stream.subarray(i, i + 1));
      if (ends.includes(i + 1)) assert.equal(out.length, 1, `a frame ends at byte ${i + 1}`);
      else assert.equal(out.length, 0, `no frame ends at byte ${i + 1}`);
      frames.push(...out);
    }
    assert.deepEqual(decoded(frames), expected);
    assert.equal(splitter.leftover, 0);
  });

  it("handles splits inside the length prefix, the prelude and across frame boundaries", () => {
    const first = events[0]!.length;
    const splits = [
      [2], // inside the total-length word
      [6], // inside the headers-length word
      [10], // inside the prelude CRC
      [first - 1, first + 3], // last byte of a frame, then inside the next prelude
      [1, 2, 3, first + 13, stream.length - 5],
      [0, 0, first, first], // empty chunks
    ];
    for (const cuts of splits) {
      const { frames, leftover } = feed(stream, cuts);
      assert.deepEqual(decoded(frames), expected, `cuts ${cuts.join(",")}`);
      assert.equal(leftover, 0);
    }
  });

  it("handles pseudo-random chunk sizes", () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 23) + 1;
    for (let round = 0; round < 20; round++) {
      const cuts: number[] = [];
      for (let at = rand(); at < stream.length; at += rand()) cuts.push(at);
      assert.deepEqual(decoded(feed(stream, cuts).frames), expected);
    }
  });

  it("holds back an incomplete frame and reports its size as leftover", () => {
    const splitter = new FrameSplitter();
    assert.deepEqual(splitter.push(stream.subarray(0, 3)), []);
    assert.equal(splitter.leftover, 3);
    const partial = events[0]!.length + 5;
    const frames = splitter.push(stream.subarray(3, partial));
    assert.equal(frames.length, 1);
    assert.equal(splitter.leftover, 5);
  });

  it("reports a frame length that cannot be valid as its fault, and reads nothing after it", () => {
    const tooSmall = Buffer.alloc(16);
    tooSmall.writeUInt32BE(15, 0);
    const small = new FrameSplitter();
    assert.deepEqual(small.push(tooSmall), []);
    assert.match(faultOf(small), /15 bytes is not valid/);
    assert.ok(small.fault instanceof FrameError);

    const tooLarge = Buffer.alloc(8);
    tooLarge.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    const large = new FrameSplitter();
    large.push(tooLarge);
    assert.match(faultOf(large), /not valid/);

    // Garbage after a good frame, with the bad prefix split across chunks.
    const splitter = new FrameSplitter();
    assert.equal(splitter.push(Buffer.concat([events[0]!, Buffer.from([0, 0])])).length, 1);
    assert.equal(splitter.fault, undefined);
    assert.deepEqual(splitter.push(Buffer.from([0, 3])), []);
    assert.match(faultOf(splitter), /3 bytes is not valid/);
    assert.deepEqual(splitter.push(events[1]!), [], "nothing after a fault is read, even a good frame");
  });

  it("still returns the good frames that arrived in the same chunk as bad bytes", () => {
    // Bedrock's last frames (with the final usage) and trailing garbage can come in one read.
    const garbage = Buffer.from([0, 0, 0, 1, 0xde, 0xad]);
    const splitter = new FrameSplitter();
    const frames = splitter.push(Buffer.concat([stream, garbage]));
    assert.deepEqual(decoded(frames), expected);
    assert.match(faultOf(splitter), /1 bytes is not valid/);
  });

  it("copies a large frame arriving in small chunks about once, not once per chunk", () => {
    const big = chunkEvent(1, "x".repeat(1024 * 1024)); // ~1.4 MB once base64'd
    const concat = Buffer.concat;
    let copied = 0;
    Buffer.concat = ((list: readonly Uint8Array[], length?: number) => {
      const out = concat(list, length);
      copied += out.length;
      return out;
    }) as typeof Buffer.concat;
    let frames: Buffer[] = [];
    try {
      const splitter = new FrameSplitter();
      for (let at = 0; at < big.length; at += 1000) frames.push(...splitter.push(big.subarray(at, at + 1000)));
    } finally {
      Buffer.concat = concat;
    }
    assert.equal(frames.length, 1);
    assert.ok(frames[0]!.equals(big));
    // Joining the chunks on every arrival would copy ~size²/2000 bytes (about 1 GB here).
    assert.ok(copied <= 2 * big.length, `${copied} bytes copied for a ${big.length}-byte frame`);
  });
});

describe("eventStreamFrames: decodeFrame", () => {
  const good = chunkEvent(3, "Hello");

  it("decodes a good frame, even one cut out of a larger buffer", () => {
    const inside = Buffer.concat([Buffer.from("before"), good, Buffer.from("after")]).subarray(6, 6 + good.length);
    const message = decodeFrame(inside);
    assert.equal(message.headers[":event-type"]?.value, "chunk");
    assert.deepEqual(decoded([inside]), decoded([good]));
  });

  it("refuses each corruption with a FrameError naming the fault", () => {
    const faults = { "prelude-crc": /prelude checksum/, "message-crc": /message checksum/, length: /claims \d+ bytes of headers/, garbage: /bytes of headers/ } as const;
    for (const [corruption, message] of Object.entries(faults) as Array<[keyof typeof faults, RegExp]>) {
      const bad = corruptFrame(good, corruption);
      assert.throws(() => decodeFrame(bad), (err: unknown) => err instanceof FrameError && message.test(err.message), corruption);
    }
  });

  it("refuses a header length that reaches past the frame, even when the memory after it holds bytes", () => {
    const frame = Buffer.from(good);
    frame.writeUInt32BE(frame.length, 4); // headers as long as the whole frame
    frame.writeUInt32BE(crc32(frame.subarray(0, 8)), 8);
    frame.writeUInt32BE(crc32(frame.subarray(0, frame.length - 4)), frame.length - 4);
    const inBigBuffer = Buffer.concat([frame, Buffer.alloc(4096, 7)]).subarray(0, frame.length);
    assert.throws(() => decodeFrame(inBigBuffer), FrameError);
  });

  it("reads the header length as an unsigned 32-bit number from a frame inside a larger buffer: 0xFFFFFFFF is named as such", () => {
    const frame = Buffer.from(good);
    frame.writeUInt32BE(0xffff_ffff, 4);
    frame.writeUInt32BE(crc32(frame.subarray(0, 8)), 8);
    frame.writeUInt32BE(crc32(frame.subarray(0, frame.length - 4)), frame.length - 4);
    const inside = Buffer.concat([Buffer.from("xyz"), frame, Buffer.alloc(64, 7)]).subarray(3, 3 + frame.length);
    assert.throws(() => decodeFrame(inside), (err: unknown) => err instanceof FrameError && err.message === `event-stream frame of ${frame.length} bytes claims 4294967295 bytes of headers`);
  });

  it("refuses a frame a client could not read: no message type, an unknown one, an event, exception or error without its type", () => {
    const frame = (headers: Record<string, string>) =>
      Buffer.from(codec.encode({ headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, { type: "string", value: v }])), body: fromUtf8("{}") }));
    assert.throws(() => decodeFrame(emptyEvent()), /no message type/);
    assert.throws(() => decodeFrame(frame({ ":message-type": "surprise" })), /message type "surprise"/);
    assert.throws(() => decodeFrame(frame({ ":message-type": "event" })), /event has no :event-type/);
    assert.throws(() => decodeFrame(frame({ ":message-type": "exception" })), /exception has no :exception-type/);
    assert.throws(() => decodeFrame(frame({ ":message-type": "error" })), /error has no :error-code/);
    assert.equal(decodeFrame(exceptionEvent()).headers[":exception-type"]?.value, "throttlingException");
  });
});
