// The team wall of the folder store: caps scoped by tags or callers, a gateway restarting beside a
// peer, and a team time-zone change while a call runs.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CallSubject } from "../../../server/budget/capMatch";
import type { CapConfig } from "../../../server/config/schema";
import type { CallRecord } from "../../../server/ledger/types";
import { silentLogger } from "../../../server/log";
import { usdToPicos } from "../../../server/metering/money";
import { ZERO_USAGE } from "../../../server/metering/types";
import { FolderTeamEngine } from "../../../server/team/folderStore";
import { toSpendFile } from "../../../server/team/spendFile";

const NOVA = "amazon.nova-lite-v1:0";
const A = "aaaaaaaaaaaaaaaa";
const B = "bbbbbbbbbbbbbbbb";

describe("team folder: the team wall", () => {
  let root: string;
  const engines: FolderTeamEngine[] = [];
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "bb-team-wall-"));
    await mkdir(path.join(root, "t")); // the team's folder, as the lead creates it
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    await rm(root, { recursive: true, force: true });
  });

  const now = new Date("2026-11-18T12:00:00Z");
  const at = now.toISOString();
  const settled = (id: string, usd: string, subject: Partial<CallSubject> = {}): CallRecord => ({
    type: "settle", id, at, startedAt: at, user: "me", tool: "script", operation: "InvokeModel", modelId: NOVA, baseModelId: NOVA,
    usage: { ...ZERO_USAGE }, usageEstimated: false, costPicos: String(usdToPicos(usd)), worstCasePicos: String(usdToPicos(usd)), outcome: "ok", status: 200, latencyMs: 1, tags: {},
    ...subject,
  });
  const open = async (member: string, writer: string, journal: CallRecord[] = [], machine = "box") => {
    const e = await FolderTeamEngine.open({
      dir: root, team: "t", member, machine, writer, syncMs: 60_000, writeDelayMs: 0, unavailable: "block",
      history: async function* () {
        yield* journal;
      },
      now: () => now, log: silentLogger(),
    });
    engines.push(e);
    return e;
  };
  const closed = async (e: FolderTeamEngine) => {
    engines.splice(engines.indexOf(e), 1);
    await e.close();
  };
  /** A call as the gateway reserves it on the team store: on the team caps that apply to its subject. */
  const reserve = (e: FolderTeamEngine, callId: string, usd: string, subject: Partial<CallSubject> = {}) => {
    const s: CallSubject = { modelId: NOVA, ...subject };
    return e.reserve({ callId, ...s, amount: usdToPicos(usd), now, capIds: e.applicable(s) });
  };

  describe("caps scoped by tags or callers", () => {
    it("refuses a $2 call tagged project=chatbot on a $1 team cap for that tag, and counts an admitted one when it settles", async () => {
      const a = await open("me", A);
      await a.setCaps([{ id: "chatbot", scope: "team", window: "day", limitUsd: 1, tags: { project: "chatbot" } }], "UTC");
      const chatbot = { tags: { project: "chatbot" } };
      assert.equal((await reserve(a, "big", "2", chatbot)).ok, false, "a $2 worst case must not pass a $1 team cap");
      assert.equal((await reserve(a, "untagged", "2")).ok, true, "the cap does not apply to other calls");

      assert.equal((await reserve(a, "first", "0.6", chatbot)).ok, true);
      assert.equal((await reserve(a, "second", "0.6", chatbot)).ok, false, "$0.60 in flight + $0.60 > $1");
      await a.settle(settled("first", "0.6", chatbot));
      assert.equal(a.status(now)[0]!.spentPicos, usdToPicos("0.6"));
      assert.equal((await reserve(a, "third", "0.6", chatbot)).ok, false, "$0.60 spent + $0.60 > $1");
    });

    it("refuses a caller-scoped team cap over its limit, and a peer sees the call in flight", async () => {
      const caps: CapConfig[] = [{ id: "staging", scope: "team", window: "day", limitUsd: 1, callers: ["AKIDSTAGING"] }];
      const a = await open("me", A);
      await a.setCaps(caps, "UTC");
      const b = await open("peer", B);
      await b.setCaps(caps, "UTC");
      const staging = { caller: "AKIDSTAGING" };
      assert.equal((await reserve(a, "big", "2", staging)).ok, false, "a $2 worst case must not pass a $1 team cap");
      assert.equal((await reserve(a, "running", "0.7", staging)).ok, true);
      await b.syncNow();
      assert.equal((await reserve(b, "peer", "0.7", staging)).ok, false, "the peer counts A's $0.70 in flight");
    });
  });

  describe("a gateway restarting", () => {
    const caps: CapConfig[] = [{ id: "team-day", scope: "team", window: "day", limitUsd: 10 }];
    /** A with $8 in its journal and its spend file, B a peer that has read it; then A stops. */
    const aSpentThenStopped = async () => {
      const journal = [settled("a1", "8")];
      const a = await open("a", A, journal);
      await a.setCaps(caps, "UTC");
      await a.syncNow();
      const b = await open("b", B);
      await b.setCaps(caps, "UTC");
      await b.syncNow();
      assert.equal(b.status(now)[0]!.spentPicos, usdToPicos("8"));
      await closed(a);
      return { journal, b };
    };

    it("a peer keeps counting its $8 while it opens the folder, and after its journal is replayed", async () => {
      const { journal, b } = await aSpentThenStopped();
      // The gateway opens the store first; the caps (and the journal replay) come after.
      const a = await open("a", A, journal);
      await b.syncNow();
      assert.equal((await reserve(b, "b1", "9")).ok, false, `B admitted $9 on a $10 cap with $8 spent by A (B sees ${b.status(now)[0]!.spentPicos})`);
      await a.setCaps(caps, "UTC");
      await a.syncNow();
      await b.syncNow();
      assert.equal(b.status(now)[0]!.spentPicos, usdToPicos("8"));
    });

    it("a peer keeps counting its $8 when it restarts on an invalid team.json (no team caps in force on it)", async () => {
      const { journal, b } = await aSpentThenStopped();
      const a = await open("a", A, journal);
      await a.setCaps([], "UTC"); // team.json invalid: only the member's own team caps, none here
      await a.syncNow();
      await b.syncNow();
      assert.equal((await reserve(b, "b1", "9")).ok, false, `B admitted $9 on a $10 cap with $8 spent by A (B sees ${b.status(now)[0]!.spentPicos})`);
      // Once team.json is valid again, A counts its journal and publishes the same $8.
      await a.setCaps(caps, "UTC");
      await a.syncNow();
      await b.syncNow();
      assert.equal(b.status(now)[0]!.spentPicos, usdToPicos("8"));
    });

    it("a peer keeps A's last good figures when A restarts on a torn spend file, until A's replay rewrites it", async () => {
      const { journal, b } = await aSpentThenStopped();
      await writeFile(path.join(root, "t", "spend", `a@box-${A.slice(0, 12)}.json`), "{ torn");
      const a = await open("a", A, journal);
      await b.syncNow();
      assert.equal(b.status(now)[0]!.spentPicos, usdToPicos("8"), "A's start does not publish $0 over its last good figures");
      await a.setCaps(caps, "UTC");
      await a.syncNow();
      await b.syncNow();
      assert.equal(b.status(now)[0]!.spentPicos, usdToPicos("8"));
      assert.equal((await reserve(b, "b1", "9")).ok, false);
    });
  });

  describe("a gateway whose host name changes", () => {
    const caps: CapConfig[] = [{ id: "team-day", scope: "team", window: "day", limitUsd: 10 }];
    const spendDir = () => path.join(root, "t", "spend");
    /** A spent $4 as a-mbp.local and stopped; B, a peer, has read its file. */
    const aSpentAsFormerHost = async () => {
      const journal = [settled("a1", "4")];
      const a = await open("a", A, journal, "a-mbp.local");
      await a.setCaps(caps, "UTC");
      await a.syncNow();
      await closed(a);
      const b = await open("b", B);
      await b.setCaps(caps, "UTC");
      await b.syncNow();
      return { journal, b };
    };

    it("its peers count its $4 once: a peer's $5 call on the $10 cap is admitted, and the file under the former name is gone", async () => {
      const { journal, b } = await aSpentAsFormerHost();
      const a = await open("a", A, journal, "a-mbp"); // the same ledger (writer id), the host name reported differently
      await a.setCaps(caps, "UTC");
      await a.syncNow();
      await b.syncNow();
      assert.equal(b.status(now)[0]!.spentPicos, usdToPicos("4"), "A's $4 counted once, not once per file name");
      assert.equal((await reserve(b, "b1", "5")).ok, true, "$4 + $5 fits a $10 cap");
      assert.deepEqual((await readdir(spendDir())).sort(), [`a@a-mbp-${A.slice(0, 12)}.json`, `b@box-${B.slice(0, 12)}.json`]);
    });

    it("restarting on an invalid team.json (no team caps in force), its new file keeps the former file's $4, so removing that file loses nothing", async () => {
      const { journal, b } = await aSpentAsFormerHost();
      const a = await open("a", A, journal, "a-mbp");
      await a.setCaps([], "UTC");
      await a.syncNow();
      await b.syncNow();
      assert.deepEqual((await readdir(spendDir())).sort(), [`a@a-mbp-${A.slice(0, 12)}.json`, `b@box-${B.slice(0, 12)}.json`]);
      assert.equal(b.status(now)[0]!.spentPicos, usdToPicos("4"));
      assert.equal((await reserve(b, "b1", "7")).ok, false, "$4 + $7 passes the $10 cap");
    });

    it("a file it left under a former name (an older updatedAt) does not count beside its newest", async () => {
      const b = await open("b", B);
      await b.setCaps(caps, "UTC");
      const file = (machine: string, usd: string, updatedAt: Date) =>
        writeFile(path.join(spendDir(), `a@${machine}-${A.slice(0, 12)}.json`), JSON.stringify(toSpendFile({ writer: A, member: "a", machine }, new Map([["team-day", new Map([["2026-11-18T00:00:00.000Z", usdToPicos(usd)]])]]), updatedAt)));
      await file("a-mbp.local", "4", new Date("2026-11-18T06:00:00Z"));
      await file("a-mbp", "4.5", new Date("2026-11-18T11:00:00Z"));
      await b.syncNow();
      assert.equal(b.status(now)[0]!.spentPicos, usdToPicos("4.5"));
      assert.equal((await reserve(b, "b1", "5")).ok, true);
    });
  });

  describe("a team time-zone change while a call runs", () => {
    const caps: CapConfig[] = [{ id: "team-month", scope: "team", window: "month", limitUsd: 10 }];

    it("keeps the running call's $6 on the wall: a second $6 is refused, the call cannot grow past the cap, and it counts once when it settles", async () => {
      const a = await open("me", A);
      await a.setCaps(caps, "UTC");
      assert.equal((await reserve(a, "running", "6")).ok, true);
      await a.setCaps(caps, "Europe/Paris"); // team.json's timeZone edited
      assert.equal((await reserve(a, "next", "6")).ok, false, "$6 in flight + $6 > $10");
      assert.equal((await a.extend("running", usdToPicos("5"), now)).ok, false, "a stream growing $6 to $11 passes a $10 cap");
      assert.equal((await a.extend("running", usdToPicos("1"), now)).ok, true);
      await a.syncNow(); // publishes the grown reservation

      const b = await open("peer", B);
      await b.setCaps(caps, "Europe/Paris");
      await b.syncNow();
      assert.equal((await reserve(b, "peer", "4")).ok, false, "the peer counts A's $7 in flight");

      await a.settle(settled("running", "7"));
      const figure = a.status(now)[0]!;
      assert.deepEqual([figure.spentPicos, figure.reservedPicos], [usdToPicos("7"), 0n]);
    });
  });
});
