/** The `tags` setting and the tag grammar the gateway applies to headers and requestMetadata. */
import assert from "node:assert/strict";
import { parseConfig } from "../../../server/config/schema";
import { checkSettings } from "../../../server/config/settingsCheck";
import { mergeTags, tagProblem } from "../../../server/config/tags";

describe("config: default tags", () => {
  it("accepts string tags and rejects bad keys, bad values and too many, naming the key", () => {
    const ok = parseConfig({ tags: { project: "chatbot", "cost-center": "CC 42/eu" } });
    assert.ok(ok.ok);
    assert.deepEqual(ok.config.tags, { project: "chatbot", "cost-center": "CC 42/eu" });
    for (const tags of [{ "": "x" }, { "a=b": "x" }, { " lead": "x" }, { k: "line\nbreak" }, { k: "v".repeat(257) }, { k: 5 }, Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]))]) {
      const r = parseConfig({ tags });
      assert.ok(!r.ok, JSON.stringify(tags));
      assert.match(r.errors.join("; "), /^tags/);
    }
  });

  it("a bad tags setting blocks the gateway (tags can scope a cap)", () => {
    const check = checkSettings({ tags: { project: "bad\u0000" } }, undefined);
    assert.equal(check.blocking.length, 1);
    assert.match(check.blocking[0]!, /^tags\.project/);
  });

  it("header over body over defaults, key by key", () => {
    assert.deepEqual(mergeTags({ a: "d", b: "d", c: "d" }, { b: "body", c: "body" }, { c: "hdr" }), { a: "d", b: "body", c: "hdr" });
    assert.deepEqual(mergeTags(undefined, {}, {}), {});
  });

  it("tagProblem names the source and the offending key", () => {
    assert.equal(tagProblem({ project: "chatbot", empty: "" }, "h"), undefined);
    assert.match(tagProblem({ "pro;ject": "x" }, "the header")!, /^the header has an invalid tag key "pro;ject"/);
    assert.match(tagProblem({ p: "<x>" }, "requestMetadata")!, /^requestMetadata has an invalid value for tag "p"/);
  });
});
