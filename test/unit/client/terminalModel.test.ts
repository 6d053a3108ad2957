/** Where terminals send Bedrock calls while the gateway serves, starts, fails, or a stranger holds its port. */
import assert from "node:assert/strict";
import { NOT_STARTED_ENDPOINT, terminalEndpoint, UNVERIFIED_ENDPOINT, whenDownNotice, whenGatewayDownOf, type TerminalInputs } from "../../../client/terminalModel";

const base: TerminalInputs = { state: undefined, lastUrl: undefined, routeTerminals: true, whenGatewayDown: "block" };
const at = (extra: Partial<TerminalInputs>) => terminalEndpoint({ ...base, ...extra });

describe("terminal endpoint", () => {
  it("points at the gateway while it serves, leader or follower", () => {
    assert.equal(at({ state: { state: "ready", url: "http://127.0.0.1:8777", role: "leader" } }), "http://127.0.0.1:8777");
    assert.equal(at({ state: { state: "ready", url: "http://127.0.0.1:9000", role: "follower" }, whenGatewayDown: "direct" }), "http://127.0.0.1:9000");
  });

  it("keeps pointing at the configured address while the gateway starts or has failed (block, the default)", () => {
    assert.equal(at({ state: { state: "starting", endpoint: "http://127.0.0.1:8777" } }), "http://127.0.0.1:8777");
    assert.equal(at({ state: { state: "error", message: "could not start", endpoint: "http://127.0.0.1:8777" } }), "http://127.0.0.1:8777");
    assert.equal(at({ state: { state: "error", message: "stopped" }, lastUrl: "http://127.0.0.1:4321" }), "http://127.0.0.1:4321", "the last address when no port is configured");
    assert.equal(at({ state: { state: "starting" } }), NOT_STARTED_ENDPOINT, "a name that never resolves when no address is known");
  });

  it("points at a name that never resolves when an unverified process holds the port", () => {
    const url = at({ state: { state: "error", message: "port taken", endpoint: "http://127.0.0.1:8777", strangerOnPort: true }, lastUrl: "http://127.0.0.1:8777" });
    assert.equal(url, UNVERIFIED_ENDPOINT);
    assert.equal(new URL(url!).hostname.endsWith(".invalid"), true);
  });

  it("removes the variable while the gateway is down when the user chose direct, and whenever routing is off", () => {
    assert.equal(at({ state: { state: "error", message: "x", endpoint: "http://127.0.0.1:8777" }, whenGatewayDown: "direct" }), undefined);
    assert.equal(at({ state: { state: "error", message: "x", strangerOnPort: true }, whenGatewayDown: "direct" }), undefined);
    assert.equal(at({ state: { state: "starting", endpoint: "http://127.0.0.1:8777" }, whenGatewayDown: "direct" }), undefined);
    assert.equal(at({ state: { state: "ready", url: "http://127.0.0.1:8777", role: "leader" }, routeTerminals: false }), undefined);
  });

  it("blocks unless the setting says exactly direct", () => {
    assert.equal(whenGatewayDownOf("direct"), "direct");
    for (const value of [undefined, "block", "Direct", 1, null]) assert.equal(whenGatewayDownOf(value), "block", String(value));
  });

  it("tells the status bar which applies while the gateway is down", () => {
    assert.match(whenDownNotice(true, "block").sentence, /calls from VS Code terminals are blocked/);
    assert.match(whenDownNotice(true, "direct").sentence, /go to Bedrock directly, unmetered/);
    assert.match(whenDownNotice(false, "block").sentence, /not routed/);
  });
});
