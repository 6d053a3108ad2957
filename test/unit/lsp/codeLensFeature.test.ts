import assert from "node:assert/strict";
import { mock } from "node:test";
import type { Connection } from "vscode-languageserver";
import type { Config } from "../../../server/config/schema";
import type { Logger } from "../../../server/log";
import { initParsers } from "../../../server/lsp/callSites/index";
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

  it("publishes nothing for a document closed before the parsers were ready: the close's empty list stays", async () => {
    const { connection, sent, handlers } = fakeConnection();
    const config = { codeLens: true, warnMissingMaxTokens: true, warnOverCap: true, pricing: {} } as unknown as Config;
    new CodeLensFeature(connection, log, () => config, { refreshSupported: false });
    const uri = "file:///a.ts";
    const text = 'import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\nnew ConverseCommand({ modelId: "amazon.nova-micro-v1:0", messages: [] });\n';
    // The editor restores a file at start-up and the user closes it at once, before the parsers finish loading.
    handlers.onDidOpenTextDocument!({ textDocument: { uri, languageId: "typescript", version: 1, text } });
    handlers.onDidCloseTextDocument!({ textDocument: { uri } });
    await initParsers();
    await new Promise((resolve) => setImmediate(resolve)); // the feature's own continuations after the parsers
    assert.deepEqual(sent.diagnostics, [{ uri, count: 0 }]);
  });

  it("still warns about an open document once the parsers are ready (a missing max tokens)", async () => {
    const { connection, sent, handlers } = fakeConnection();
    const config = { codeLens: true, warnMissingMaxTokens: true, warnOverCap: true, pricing: {} } as unknown as Config;
    new CodeLensFeature(connection, log, () => config, { refreshSupported: false });
    const uri = "file:///b.ts";
    const text = 'import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\nnew ConverseCommand({ modelId: "amazon.nova-micro-v1:0", messages: [] });\n';
    handlers.onDidOpenTextDocument!({ textDocument: { uri, languageId: "typescript", version: 1, text } });
    await initParsers();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sent.diagnostics, [{ uri, count: 1 }]);
  });

  it("publishes an edited document's warnings once, for the version edited to, when the edit came before the parsers were ready", async () => {
    const { connection, sent, handlers } = fakeConnection();
    const config = { codeLens: true, warnMissingMaxTokens: true, warnOverCap: true, pricing: {} } as unknown as Config;
    new CodeLensFeature(connection, log, () => config, { refreshSupported: false });
    const uri = "file:///c.ts";
    const call = (limit: string) => `import { ConverseCommand } from "@aws-sdk/client-bedrock-runtime";\nnew ConverseCommand({ modelId: "amazon.nova-micro-v1:0", messages: []${limit} });\n`;
    handlers.onDidOpenTextDocument!({ textDocument: { uri, languageId: "typescript", version: 1, text: call(", inferenceConfig: { maxTokens: 5 }") } });
    handlers.onDidChangeTextDocument!({ textDocument: { uri, version: 2 }, contentChanges: [{ text: call("") }] });
    await initParsers();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sent.diagnostics, [{ uri, count: 1 }]);
  });
});
