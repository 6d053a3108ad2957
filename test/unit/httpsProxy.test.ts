/**
 * Which HTTPS calls go through the corporate proxy (server/httpsProxy.ts): an empty variable does
 * not hide the other spelling's proxy (as curl reads them), and loopback in any spelling goes direct.
 */
import assert from "node:assert/strict";
import { configureHttpsProxy, exemptFromProxy, httpsProxyAgent } from "../../server/httpsProxy";

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

  it("loopback in every spelling goes direct: IPv4-mapped, written out, anywhere in 127/8", () => {
    for (const host of ["127.0.0.1", "127.3.4.5", "localhost", "LOCALHOST.", "::1", "[::1]", "0:0:0:0:0:0:0:1", "[::ffff:127.0.0.1]", "::ffff:127.0.0.1", new URL("https://[::ffff:127.0.0.1]:8443/").hostname]) {
      assert.equal(exemptFromProxy(host, 8443, []), true, host);
    }
    for (const host of ["[::ffff:10.0.0.1]", "128.0.0.1", "localhost.example.com", "[::2]"]) assert.equal(exemptFromProxy(host, 443, []), false, host);
    configureHttpsProxy({ HTTPS_PROXY: "http://proxy.example.com:3128" });
    assert.equal(how("[::ffff:127.0.0.1]"), "direct");
    assert.equal(how(BEDROCK), "proxy");
  });
});
