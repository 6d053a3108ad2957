/**
 * Child process for the journal crash test: appends reserve entries forever from several concurrent
 * writers (with the durability given) and prints each id to stdout only after its append resolved. The parent SIGKILLs it.
 */
import { Journal, type Durability } from "../../../server/ledger/journal";
import type { ReserveEntry } from "../../../server/ledger/types";

async function main(): Promise<void> {
  const dir = process.argv[2];
  const durability = process.argv[3] as Durability | undefined;
  if (!dir || (durability !== "process" && durability !== "machine")) throw new Error("usage: journal-crash-child <dir> process|machine");
  const journal = await Journal.open(dir, { durability });
  const padding = "x".repeat(2000); // big lines make a kill mid-write more likely
  let n = 0;
  const writer = async (w: number) => {
    for (;;) {
      const id = `w${w}-${n++}`;
      const entry: ReserveEntry = {
        type: "reserve", id, at: new Date().toISOString(), user: "crash", tool: padding, operation: "Converse",
        modelId: "m", worstCasePicos: "1", capIds: [],
      };
      await journal.append(entry);
      process.stdout.write(id + "\n"); // synchronous for pipes on POSIX
    }
  };
  await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(writer));
}

main().catch((err) => {
  process.stderr.write(String(err) + "\n");
  process.exit(1);
});
