/** Child process for checkpointDurability.test.ts: writes `<dir>/state.json` once (StateStore.flush), to be traced. */
import { privateDir } from "../../../server/ledger/privateFiles";
import { StateStore } from "../../../server/ledger/state";

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: checkpointDurability-child <dir>");
  await privateDir(dir);
  const state = await StateStore.open(dir, { timeZone: "UTC", stamp: (d) => (d.savedAt = new Date().toISOString()) });
  await state.flush();
}

main().catch((err) => {
  process.stderr.write(String(err) + "\n");
  process.exit(1);
});
