/**
 * One load process of the wall-under-load test: the real @aws-sdk/client-bedrock-runtime (default
 * handler) sends its share of calls all at once when the parent says "go", and prints what each
 * response said it cost in tokens (or the error it got) as one JSON line.
 * Run as `node --import tsx loadWorker.ts '<json WorkerInput>'`.
 */
import { createInterface } from "node:readline";
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
} from "@aws-sdk/client-bedrock-runtime";

export interface WorkerCall {
  op: "InvokeModel" | "Converse" | "ConverseStream";
  model: string;
  maxTokens: number;
}

export interface WorkerInput {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  calls: WorkerCall[];
}

export type WorkerResult =
  | { ok: true; op: WorkerCall["op"]; model: string; requestId: string; input: number; output: number }
  | { ok: false; op: WorkerCall["op"]; model: string; name: string; message: string };

/** About 100 words: the gateway's estimate of its input is far above the few tokens the fake reports. */
const PROMPT = "Summarise the reliability of a budget gateway under concurrent load. ".repeat(6);

async function one(client: BedrockRuntimeClient, call: WorkerCall): Promise<WorkerResult> {
  try {
    if (call.op === "InvokeModel") {
      const out = await client.send(new InvokeModelCommand({
        modelId: call.model,
        contentType: "application/json",
        body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: call.maxTokens, messages: [{ role: "user", content: PROMPT }] }),
      }));
      const usage = (JSON.parse(Buffer.from(out.body).toString("utf8")) as { usage: { input_tokens: number; output_tokens: number } }).usage;
      return { ok: true, op: call.op, model: call.model, requestId: out.$metadata.requestId ?? "", input: usage.input_tokens, output: usage.output_tokens };
    }
    const request = { modelId: call.model, messages: [{ role: "user" as const, content: [{ text: PROMPT }] }], inferenceConfig: { maxTokens: call.maxTokens } };
    if (call.op === "Converse") {
      const out = await client.send(new ConverseCommand(request));
      return { ok: true, op: call.op, model: call.model, requestId: out.$metadata.requestId ?? "", input: out.usage!.inputTokens!, output: out.usage!.outputTokens! };
    }
    const out = await client.send(new ConverseStreamCommand(request));
    let usage: { inputTokens?: number; outputTokens?: number } | undefined;
    for await (const event of out.stream!) if (event.metadata) usage = event.metadata.usage;
    if (!usage) throw new Error("the stream ended without a metadata event");
    return { ok: true, op: call.op, model: call.model, requestId: out.$metadata.requestId ?? "", input: usage.inputTokens!, output: usage.outputTokens! };
  } catch (err) {
    const e = err as Error;
    return { ok: false, op: call.op, model: call.model, name: e.name, message: e.message };
  }
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? "") as WorkerInput;
  const client = new BedrockRuntimeClient({
    region: "us-east-1",
    endpoint: input.endpoint,
    credentials: { accessKeyId: input.accessKeyId, secretAccessKey: input.secretAccessKey },
  });
  process.stdout.write("ready\n");
  // Wait for "go" so that every process fires at the same moment.
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once("line", () => resolve()));
  lines.close();
  const results = await Promise.all(input.calls.map((c) => one(client, c)));
  client.destroy();
  // A pipe write is asynchronous: exit only once it has been handed to the OS.
  await new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(results)}\n`, () => resolve()));
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`load worker: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
