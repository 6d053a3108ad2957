/** The dashboard panel, the endpoint commands and other extensions talk only to a gateway proven ready now. */
import assert from "node:assert/strict";
import { liveGateway, notServingMessage } from "../../../client/gatewayTarget";

describe("gateway target", () => {
  it("is the ready gateway's address and token, leader or follower", () => {
    assert.deepEqual(liveGateway({ state: "ready", url: "http://127.0.0.1:8777", role: "leader", token: "t0ken" }), { url: "http://127.0.0.1:8777", token: "t0ken" });
    assert.deepEqual(liveGateway({ state: "ready", url: "http://127.0.0.1:9000", role: "follower" }), { url: "http://127.0.0.1:9000" });
  });

  it("is nothing while the gateway starts, has failed, or a stranger holds its port: its old address may be anyone's", () => {
    assert.equal(liveGateway(undefined), undefined);
    assert.equal(liveGateway({ state: "starting", endpoint: "http://127.0.0.1:8777" }), undefined);
    assert.equal(liveGateway({ state: "error", message: "could not start", endpoint: "http://127.0.0.1:8777" }), undefined);
    assert.equal(liveGateway({ state: "error", message: "another process holds port 8777", endpoint: "http://127.0.0.1:8777", strangerOnPort: true }), undefined);
  });

  it("says why a command cannot act, without link syntax from the state's message", () => {
    assert.equal(notServingMessage({ state: "starting" }), "Bedrock Budget: the gateway is not running yet.");
    const failed = notServingMessage({ state: "error", message: "ledger [here](command:workbench.action.terminal.new) unreadable" });
    assert.match(failed, /not serving: ledger \[here\] \(command:/);
  });
});
