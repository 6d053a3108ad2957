/** The local API's event stream as a gateway's shutdown ends it. */
import assert from "node:assert/strict";
import http from "node:http";
import { API_PATHS, TOKEN_HEADER } from "../../server/protocol";
import { startHarness, type Harness } from "../support/harness";

describe("local API: event streams at shutdown", function () {
  this.timeout(30_000);
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(() => h.close());

  it("a status or call published after the streams are ended (calls still settling at shutdown) is not written after their end", async () => {
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => uncaught.push(err);
    // Mocha's own handler would fail the test too; this one says what happened.
    process.prependListener("uncaughtException", onUncaught);
    try {
      const url = new URL(`${h.gateway.url}${API_PATHS.events}`);
      const ended = new Promise<string>((resolve, reject) => {
        const req = http.get(url, { headers: { [TOKEN_HEADER]: h.gateway.api.token() } }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            if (text === "") {
              // The first status arrived: the gateway shuts its streams, and a call settles in the same turn.
              h.gateway.api.endStreams();
              h.gateway.api.publishStatus();
            }
            text += chunk;
          });
          res.on("end", () => resolve(text));
        });
        req.on("error", reject);
      });
      const text = await ended;
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(uncaught.map((e) => e.message), [], "no write after the end");
      assert.equal(text.match(/^event: status$/gm)?.length, 1, "the stream ended after its first status");
    } finally {
      process.off("uncaughtException", onUncaught);
    }
  });
});
