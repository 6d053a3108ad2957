import assert from "node:assert/strict";
import { accessDenied, bedrockError, refusal, upstreamUnreachable, validation, type ErrorAnswer } from "../../../server/gateway/errors";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function assertShape(answer: ErrorAnswer, status: number, type: string, message: string): void {
  assert.equal(answer.status, status);
  assert.equal(answer.headers["x-amzn-errortype"], type);
  assert.equal(answer.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(answer.body.toString("utf8")), { message });
  assert.equal(answer.headers["content-length"], String(answer.body.byteLength));
  assert.match(answer.headers["x-amzn-requestid"] ?? "", UUID);
  // A correct HTTP date, near now: SDKs use it to correct clock skew.
  const date = answer.headers.date ?? "";
  assert.match(date, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  assert.ok(Math.abs(Date.parse(date) - Date.now()) < 5_000, date);
}

describe("errors: Bedrock's error shape", () => {
  it("a budget refusal is a 400 ServiceQuotaExceededException that no client retries", () => {
    const a = refusal("Refused: the daily cap of $5.00 would be exceeded.");
    assertShape(a, 400, "ServiceQuotaExceededException", "Refused: the daily cap of $5.00 would be exceeded.");
    assert.equal(a.headers["x-should-retry"], "false");
  });

  it("validation, access denied and unknown operation are 4xx marked x-should-retry: false", () => {
    const v = validation("bad body");
    assertShape(v, 400, "ValidationException", "bad body");
    assert.equal(v.headers["x-should-retry"], "false");

    const tooLarge = validation("the request body is too large", 413);
    assertShape(tooLarge, 413, "ValidationException", "the request body is too large");
    assert.equal(tooLarge.headers["x-should-retry"], "false");

    const denied = accessDenied("Bedrock Budget refused the request: wrong key");
    assertShape(denied, 403, "AccessDeniedException", "Bedrock Budget refused the request: wrong key");
    assert.equal(denied.headers["x-should-retry"], "false");

    const unknown = bedrockError(404, "UnknownOperationException", "no such operation");
    assertShape(unknown, 404, "UnknownOperationException", "no such operation");
    assert.equal(unknown.headers["x-should-retry"], "false");
  });

  it("429 throttling stays retryable (no x-should-retry) and carries extra headers such as Retry-After", () => {
    const t = bedrockError(429, "ThrottlingException", "slow down", { "retry-after": "7" });
    assertShape(t, 429, "ThrottlingException", "slow down");
    assert.equal(t.headers["x-should-retry"], undefined);
    assert.equal(t.headers["retry-after"], "7");
  });

  it("5xx answers are left to the clients' retry rules (no x-should-retry)", () => {
    const u = upstreamUnreachable("could not reach Bedrock");
    assertShape(u, 502, "ServiceUnavailableException", "could not reach Bedrock");
    assert.equal(u.headers["x-should-retry"], undefined);
    const i = bedrockError(500, "InternalServerException", "oops");
    assert.equal(i.headers["x-should-retry"], undefined);
  });

  it("encodes messages as JSON safely (quotes, newlines, non-ASCII) with a byte-accurate length", () => {
    const message = 'cap "team-day" — 5 € left\nline two';
    const a = validation(message);
    assert.deepEqual(JSON.parse(a.body.toString("utf8")), { message });
    assert.equal(Number(a.headers["content-length"]), Buffer.byteLength(JSON.stringify({ message })));
  });

  it("gives every answer its own request id", () => {
    const ids = new Set(Array.from({ length: 20 }, () => refusal("x").headers["x-amzn-requestid"]));
    assert.equal(ids.size, 20);
  });
});
