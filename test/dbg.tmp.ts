import { InvokeModelWithResponseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { startHarness, SONNET_45, anthropicBody } from "./support/harness";
(async () => {
  const h = await startHarness({ caps: [{ id: "stream-cap", window: "day", limitUsd: 0.005 }] });
  h.fake.behave(() => ({ kind: "ok", usage: { input: 20, output: 3000 }, chunks: 1500 }));
  const out = await h.client.send(new InvokeModelWithResponseStreamCommand({ modelId: SONNET_45, body: anthropicBody("go", 10) }));
  let n = 0;
  try { for await (const p of out.body!) n++; } catch (e) { console.log("err", n, (e as Error).name, (e as Error).message); }
  const r = await fetch(h.gateway.url + "/__bedrock-budget/v1/calls"); console.log(await r.text());
  await h.close();
})();
