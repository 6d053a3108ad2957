import assert from "node:assert/strict";
import { mock } from "node:test";
import type { Connection } from "vscode-languageserver";
import type { Config } from "../../../server/config/schema";
import type { Logger } from "../../../server/log";
import { CodeLensFeature } from "../../../server/lsp/codeLensFeature";
import type { StatusResponse } from "../../../server/protocol";

/** A connection that records what the feature sends and keeps the handlers it registers. */
function fakeConnection() {
  const sent = { refreshes: 0, diagnostics: [] as { uri: string; count: number }[] };
  const handlers: Record<string, (...args: unknown[]) => unknown> = {};
  const connection = new Proxy({} as Record<string, unknown>, {
    get: (_t, name: string) => {
      if (name === "sendRequest") return async () => void sent.refreshes++;
      if (name === "sendDiagnostics") return async (d: { uri: string; diagnostics: unknown[] }) => void sent.diagnostics.push({ uri: d.uri, count: d.diagnostics.length });
      return (handler: (...args: unknown[]) => unknown) => {
        handlers[name] = handler;
        return { dispose() {} };
      };
    },
  }) as unknown as Connection;
  return { connection, sent, handlers };
}

const log = { warn() {}, info() {}, error() {}, debug() {} } as unknown as Logger;

function status(calls: number, costExact: string): StatusResponse {
  return { todayByModel: { "amazon.nova-micro-v1:0": { calls, costUsd: Number(costExact), costExact } }, caps: [] } as unknown as StatusResponse;
}

describe("lsp: the code-lens feature", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  it("refreshes the lenses when only today's calls per model change (the lens shows them)", () => {
    const { connection, sent } = fakeConnection();
    const feature = new CodeLensFeature(connection, log, () => undefined, { refreshSupported: true });
    feature.onStatus(status(1, "0.01"));
    mock.timers.tick(250);
    assert.equal(sent.refreshes, 1);
    feature.onStatus(status(1, "0.01"));
    mock.timers.tick(250);
    assert.equal(sent.refreshes, 1, "the same figures again: nothing to redraw");
    feature.onStatus(status(50, "0.50"));
    mock.timers.tick(250);
    assert.equal(sent.refreshes, 2);
  });
});
