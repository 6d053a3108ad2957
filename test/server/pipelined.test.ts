/**
 * HTTP/1.1 pipelining on the gateway's port: a request queued behind one the gateway refuses unread
 * (whose answer closes the connection) can never be answered, so it must never reach Bedrock.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { API_PATHS, TOKEN_HEADER, type CallsResponse } from "../../server/protocol";
import { anthropicBody, SONNET_45, startHarness, type Harness } from "../support/harness";
import { signFor } from "../reliability/support";

const PATH = `/model/${encodeURIComponent(SONNET_45)}/invoke`;

/** Writes `bytes` on one connection and reads everything the gateway sends until it closes the connection. */
function exchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", () => undefined);
    socket.once("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.write(bytes);
  });
}

describe("gateway: HTTP/1.1 requests pipelined behind a refusal", function () {
  let h: Harness;
  before(async () => {
    h = await startHarness({ caps: [{ id: "daily", window: "day", limitUsd: 5 }], guardrailPricing: { contentPolicy: 0.15, topicPolicy: 0.15, wordPolicy: 0.1, sensitiveInformationPolicy: 0.1 } });
  });
  after(() => h.close());

  beforeEach(() => h.fake.reset());

  it("a signed call queued behind an unsigned request on one connection is not sent to Bedrock nor charged: its answer could never be delivered", async () => {
    const port = h.gateway.port;
    const host = `127.0.0.1:${port}`;
    const unsigned = `POST ${PATH} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n`;
    const call = signFor(host, { method: "POST", path: PATH, headers: {}, body: Buffer.from(anthropicBody("pipelined", 20)) });
    const signed = `POST ${PATH} HTTP/1.1\r\n${Object.entries(call.headers).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`;

    const wire = await exchange(port, Buffer.concat([Buffer.from(unsigned + signed, "latin1"), call.body]));

    // The refusal closes the connection: the caller hears that one answer, and must send its call again.
    assert.deepEqual([...wire.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]), ["403"]);
    assert.match(wire, /\r\nconnection: close\r\n/i);
    await h.restart(); // its close() lets the queued call run to its end first
    assert.equal(h.fake.hits.length, 0, "the queued call reached Bedrock, with nobody left to answer");
    const res = await fetch(`${h.gateway.url}${API_PATHS.calls}`, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } });
    const { calls } = (await res.json()) as CallsResponse;
    assert.ok(calls.every((c) => c.costPicos === "0"), `charged: ${JSON.stringify(calls.map((c) => [c.outcome, c.costPicos]))}`);
    const status = h.gateway.api.status();
    assert.equal(status.caps[0]!.spentExact, "0");
  });

  it("a priced ApplyGuardrail call queued behind an unsigned request is not sent nor charged either", async () => {
    const port = h.gateway.port;
    const host = `127.0.0.1:${port}`;
    const path = "/guardrail/gr-pipelined/version/1/apply";
    const unsigned = `POST ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n`;
    const call = signFor(host, { method: "POST", path, headers: {}, body: Buffer.from(JSON.stringify({ source: "INPUT", content: [{ text: { text: "hello" } }] })) });
    const signed = `POST ${path} HTTP/1.1\r\n${Object.entries(call.headers).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`;

    const wire = await exchange(port, Buffer.concat([Buffer.from(unsigned + signed, "latin1"), call.body]));

    assert.deepEqual([...wire.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]), ["403"]);
    await h.restart();
    assert.equal(h.fake.hits.length, 0, "the queued guardrail call reached Bedrock, with nobody left to answer");
    assert.equal(h.gateway.api.status().caps[0]!.spentExact, "0");
  });
});
