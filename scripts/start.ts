/**
 * `npm start`: the main job on a fresh clone (after `npm ci`): the production build and
 * `bedrock-budget.vsix` (`npm run package`), then the gateway on its default port with the shipped example config,
 * and once it listens, how to point tools at it and where the VSIX is. Extra arguments go to
 * `serve` (`npm start -- --simulate`, `npm start -- --port 8778`). Ctrl-C stops the gateway.
 */
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const CONFIG = "bedrock-budget.example.json";
const VSIX = path.join(ROOT, "bedrock-budget.vsix");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

const packaged = spawnSync(npm, ["run", "package"], { cwd: ROOT, stdio: "inherit" });
if (packaged.status !== 0) {
  process.stderr.write(`npm start: \`npm run package\` failed (exit ${packaged.status ?? packaged.signal}); the gateway was not started.\n`);
  process.exit(packaged.status ?? 1);
}

const args = process.argv.slice(2);
// Its own process group: a terminal's Ctrl-C reaches it once, through this script (twice would stop calls in flight at once).
const gateway = spawn(process.execPath, [path.join(ROOT, "out/cli.js"), "serve", "--config", CONFIG, ...args], { cwd: ROOT, stdio: ["inherit", "pipe", "inherit"], detached: true });
let printed = false;
let buffered = "";
gateway.stdout!.on("data", (chunk: Buffer) => {
  process.stdout.write(chunk);
  if (printed) return;
  buffered += chunk.toString();
  const m = /^listening on (http:\/\/\S+)$/m.exec(buffered);
  if (!m) return;
  printed = true;
  process.stdout.write(guide(m[1]!, args.includes("--simulate")));
});
// Ctrl-C (or a signal to this script) is passed on: the gateway shuts down cleanly, calls in flight settle.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => gateway.kill(signal));
gateway.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

function guide(url: string, simulated: boolean): string {
  return [
    "",
    `Bedrock Budget gateway ready at ${url} (caps from ${CONFIG}: $10 a day, $100 a month${simulated ? "; SIMULATED: no AWS calls" : ""}).`,
    "Point your tools at it (boto3, the AWS CLI, the JS SDK v3, the Vercel AI SDK and LangChain read the first variable;",
    "Anthropic's @anthropic-ai/bedrock-sdk reads only the second):",
    `  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME=${url} ANTHROPIC_BEDROCK_BASE_URL=${url}`,
    `Status:    node out/cli.js status${statusFlags()}`,
    `VS Code:   ${VSIX}`,
    `           install it with: code --install-extension ${path.relative(process.cwd(), VSIX) || VSIX}`,
    "           (or Extensions: Install from VSIX… in VS Code)",
    "Stop with Ctrl-C.",
    "",
  ].join("\n");
}

/** The serve flags `status` needs to find this gateway and its ledger. */
function statusFlags(): string {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--simulate") out.push("--simulate");
    else if ((args[i] === "--port" || args[i] === "--ledger") && args[i + 1] !== undefined) out.push(args[i]!, args[++i]!);
  }
  return out.length ? ` ${out.join(" ")}` : "";
}
