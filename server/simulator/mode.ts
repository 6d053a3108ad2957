/** What makes a gateway simulated apart from its upstream: its own ledger folder and placeholder credentials. Pure. */
import path from "node:path";

/** Simulated calls are journaled here, inside the ledger folder they would otherwise share: never mixed with real spend. */
export const SIMULATED_LEDGER_SUBDIR = "simulated";

export function simulatedLedgerDir(ledgerDir: string): string {
  return path.join(ledgerDir, SIMULATED_LEDGER_SUBDIR);
}

/** Signs the hop to the simulator (which checks nothing): no real credentials are read in simulate mode. */
export const SIMULATED_CREDENTIALS = { accessKeyId: "BEDROCKBUDGETSIMULATED", secretAccessKey: "simulated-no-aws-credentials" } as const;
