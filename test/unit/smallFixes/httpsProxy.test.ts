/**
 * Which HTTPS calls go through the corporate proxy (server/httpsProxy.ts): an empty variable does
 * not hide the other spelling's proxy (as curl reads them).
 */
import assert from "node:assert/strict";
import { configureHttpsProxy, httpsProxyAgent } from "../../../server/httpsProxy";

const BEDROCK = "bedrock-runtime.us-east-1.amazonaws.com";
const POOL = {};
/** "proxy" when the call would go through a proxy, "direct" when it goes straight, else why it is refused. */
const how = (host: string) => {
  const agent = httpsProxyAgent(host, 443, POOL);
  return agent === undefined ? "direct" : typeof agent === "string" ? agent : "proxy";
};

describe("small fixes: HTTPS_PROXY / NO_PROXY", () => {
  after(() => configureHttpsProxy({}));

  it("https_proxy set but empty does not hide HTTPS_PROXY: calls still go through the proxy", () => {
    configureHttpsProxy({ https_proxy: "", HTTPS_PROXY: "http://proxy.example.com:3128" });
    assert.equal(how(BEDROCK), "proxy");
    configureHttpsProxy({ https_proxy: "  ", HTTPS_PROXY: "http://proxy.example.com:3128" });
    assert.equal(how(BEDROCK), "proxy");
    // The lower-case spelling, when it has a value, still comes first (curl's order).
    configureHttpsProxy({ https_proxy: "ftp://x", HTTPS_PROXY: "http://proxy.example.com:3128" });
    assert.match(how(BEDROCK), /only http:\/\/ and https:\/\/ proxies/);
  });

  it("no_proxy set but empty does not hide NO_PROXY: the hosts it names still go direct", () => {
    configureHttpsProxy({ HTTPS_PROXY: "http://proxy.example.com:3128", no_proxy: "", NO_PROXY: "amazonaws.com" });
    assert.equal(how(BEDROCK), "direct");
    configureHttpsProxy({ HTTPS_PROXY: "http://proxy.example.com:3128", no_proxy: "example.org", NO_PROXY: "amazonaws.com" });
    assert.equal(how(BEDROCK), "proxy", "a no_proxy with a value still wins over NO_PROXY");
  });

});
