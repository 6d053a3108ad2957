/**
 * The dashboard's series route over a real ledger folder: "loading" while its aggregate is being
 * built instead of holding the request, and a restart that builds from the ledger's checkpoint
 * (reading only the journal past it) showing what a build from the whole journal shows.
 */
import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, open, readFile, rename, rm, rmdir, unlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { parseConfig } from "../../../server/config/schema";
import { DashboardAggregate } from "../../../server/dashboard/aggregate";
import { DASHBOARD_CHECKPOINT, DashboardRoutes, type DashboardContext } from "../../../server/dashboard/routes";
import { journalMonth } from "../../../server/ledger/journal";
import { Ledger } from "../../../server/ledger/ledger";
import { createLogger } from "../../../server/log";
import { picosToUsd } from "../../../server/metering/money";
import { PriceBook } from "../../../server/metering/prices";
import type { CallRecord } from "../../../server/ledger/types";
import type { DashboardSeriesLoading, DashboardSeriesResponse } from "../../../server/protocol";
import { DASHBOARD_PATHS, TOKEN_HEADER } from "../../../server/shared/apiPaths";
import { seedRecords, writeLedger } from "../../support/dashboardSeed";
import { localDate } from "../../../webview/format";

const NOW = new Date("2026-11-18T15:20:00Z");

interface Served {
  routes: DashboardRoutes;
  ledger: Ledger;
  get(window?: string): Promise<DashboardSeriesResponse | DashboardSeriesLoading>;
  /** The export's file name for a range. */
  exportName(from: string, to: string): Promise<string>;
  close(): Promise<void>;
}

/** A ledger opened as the gateway opens it, its dashboard routes, and an HTTP server in front of them. */
async function serveDashboard(dir: string, durability?: "machine", timeZone = "UTC", logs: string[] = []): Promise<Served> {
  const ledger = await Ledger.open(dir, { timeZone: "UTC", now: () => NOW, stateDebounceMs: 60_000, ...(durability ? { durability } : {}) });
  const parsed = parseConfig({});
  assert.ok(parsed.ok);
  const ctx: DashboardContext = {
    config: parsed.config,
    prices: new PriceBook(),
    credentials: () => Promise.reject(new Error("no credentials in this test")),
    ledger,
    log: createLogger((level, line) => logs.push(`${level}: ${line}`)),
    timeZone,
    now: () => NOW,
  };
  const routes = new DashboardRoutes(() => ctx, () => ({ caps: [] }) as never);
  const server: Server = createServer((req, res) => void routes.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    routes,
    ledger,
    async get(window = "month") {
      const res = await fetch(`http://127.0.0.1:${port}${DASHBOARD_PATHS.series}?window=${window}`, { headers: { [TOKEN_HEADER]: ledger.secret.token() } });
      assert.equal(res.status, 200);
      return (await res.json()) as DashboardSeriesResponse | DashboardSeriesLoading;
    },
    async exportName(from, to) {
      const res = await fetch(`http://127.0.0.1:${port}${DASHBOARD_PATHS.exportCsv}?from=${from}&to=${to}`, { headers: { [TOKEN_HEADER]: ledger.secret.token() } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      return /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1] ?? "";
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ledger.close();
    },
  };
}

function series(body: DashboardSeriesResponse | DashboardSeriesLoading): DashboardSeriesResponse {
  assert.ok(!("loading" in body), "the aggregate is built");
  return body;
}

describe("dashboard routes", function () {
  this.timeout(60_000);
  let dir: string;
  const records = seedRecords({ now: NOW, pastCalls: 300, todayCalls: 40 });

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bb-dash-routes-"));
    await writeLedger(dir, records);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("answers \"loading\" at once while the aggregate is being built, then the figures once it is", async () => {
    const s = await serveDashboard(dir);
    try {
      // The gateway starts the build once it listens (afterListening): until then it is not built.
      const loading = await s.get("day");
      assert.ok("loading" in loading && loading.loading, "the series says it is loading");
      assert.equal(loading.window, "day");
      assert.match(loading.message, /reading this month's calls/);
      s.routes.afterListening();
      await s.routes.ready;
      const day = series(await s.get("day"));
      assert.equal(day.totals.calls, records.filter((r) => r.startedAt >= "2026-11-18").length);
    } finally {
      await s.close();
    }
  });

  it("counts once a call whose journal line is written but not yet synced (durability machine) while the build reads the journal", async () => {
    const s = await serveDashboard(dir, "machine");
    // Hold the next fdatasync (the settle's, on the answer's path under "machine") until the build is done.
    const probe = await open(path.join(dir, "probe"), "w");
    const proto = Object.getPrototypeOf(probe) as { datasync(this: unknown): Promise<void> };
    await probe.close();
    const realSync = proto.datasync;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    proto.datasync = async function (this: unknown) {
      if (!held) {
        held = true;
        await gate;
      }
      return realSync.call(this);
    };
    try {
      const today = records.filter((r) => r.startedAt >= "2026-11-18");
      const settling = s.ledger.settle({ ...today[0]!, id: "settled-during-the-build" });
      for (let i = 0; i < 200 && !held; i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(held, "the settle's line was written and its sync is held");
      s.routes.afterListening();
      await s.routes.ready;
      release();
      await settling;
      assert.equal(series(await s.get("day")).totals.calls, today.length + 1, "the call read from the journal was counted again when it settled");
    } finally {
      proto.datasync = realSync;
      release();
      await s.close();
    }
  });

  it("names an export by the range's local dates (Berlin's week of 30 Nov starts at 23:00 UTC the day before)", async () => {
    const s = await serveDashboard(dir, undefined, "Europe/Berlin");
    try {
      assert.equal(await s.exportName("2026-11-29T23:00:00.000Z", "2026-12-06T23:00:00.000Z"), "bedrock-budget-2026-11-30-to-2026-12-06.csv");
      assert.equal(localDate("2026-11-29T23:00:00.000Z", "Europe/Berlin"), "2026-11-30", "the page's suggested name too");
    } finally {
      await s.close();
    }
  });

  it("starts again from the aggregate in the ledger's checkpoint, reads only the journal past it, and shows what the whole journal shows", async () => {
    // First start: built from the whole journal; closing writes the checkpoint with the aggregate.
    const first = await serveDashboard(dir);
    first.routes.afterListening();
    await first.routes.ready;
    assert.equal(first.routes.readCalls, records.length);
    await first.close();
    // Calls settled after that checkpoint (as by a gateway killed before its next state write).
    const later = seedRecords({ now: NOW, pastCalls: 0, todayCalls: 25, seed: 99 }).map((r) => ({ ...r, id: `later-${r.id}` }));
    await appendFile(path.join(dir, "journal", `${journalMonth(NOW)}.jsonl`), later.map((r) => JSON.stringify(r) + "\n").join(""));

    const again = await serveDashboard(dir);
    let fromCheckpoint: DashboardSeriesResponse[];
    try {
      again.routes.afterListening();
      await again.routes.ready;
      assert.equal(again.routes.readCalls, later.length, "only the calls past the checkpoint are read");
      fromCheckpoint = [series(await again.get("day")), series(await again.get("week")), series(await again.get("month"))];
    } finally {
      await again.close();
    }
    await unlink(path.join(dir, "state.json")); // no checkpoint: the whole journal is read
    const whole = await serveDashboard(dir);
    try {
      whole.routes.afterListening();
      await whole.routes.ready;
      assert.equal(whole.routes.readCalls, records.length + later.length);
      assert.deepEqual(fromCheckpoint, [series(await whole.get("day")), series(await whole.get("week")), series(await whole.get("month"))]);
      assert.equal(fromCheckpoint[2]!.totals.calls, records.length + later.length);
    } finally {
      await whole.close();
    }
  });

  it("does not restore an aggregate an earlier version kept (an attached guardrail counted under its model): the start reads the journal whole and charts the guardrail apart", async () => {
    // Today's calls with an attached guardrail: a fifth of each one's cost is the guardrail's.
    const guarded = seedRecords({ now: NOW, pastCalls: 0, todayCalls: 20, seed: 5 })
      .filter((r) => BigInt(r.costPicos) > 0n)
      .map((r): CallRecord => ({ ...r, id: `guarded-${r.id}`, guardrail: { id: "gr-1", costPicos: String(BigInt(r.costPicos) / 5n), worstCasePicos: "0", units: 4, unitsEstimated: false } }));
    assert.ok(guarded.length > 0);
    await appendFile(path.join(dir, "journal", `${journalMonth(NOW)}.jsonl`), guarded.map((r) => JSON.stringify(r) + "\n").join(""));
    const all = [...records, ...guarded];
    const first = await serveDashboard(dir);
    first.routes.afterListening();
    await first.routes.ready;
    await first.close(); // writes the checkpoint
    // What the earlier version kept there: every call's whole cost under its model, as version 1.
    const earlier = new DashboardAggregate();
    for (const r of all) earlier.add({ ...r, guardrail: undefined });
    const stateFile = path.join(dir, "state.json");
    const state = JSON.parse(await readFile(stateFile, "utf8")) as { checkpoint: { parts: Record<string, unknown> } };
    assert.equal(typeof state.checkpoint.parts[DASHBOARD_CHECKPOINT], "string", "the first start kept its aggregate");
    state.checkpoint.parts[DASHBOARD_CHECKPOINT] = earlier.snapshot().replace(/^\{"v":\d+,/, '{"v":1,');
    await writeFile(stateFile, JSON.stringify(state));

    const logs: string[] = [];
    const again = await serveDashboard(dir, undefined, "UTC", logs);
    let month: DashboardSeriesResponse;
    try {
      again.routes.afterListening();
      await again.routes.ready;
      assert.equal(again.routes.readCalls, all.length, "the whole journal is read");
      month = series(await again.get("month"));
    } finally {
      await again.close();
    }
    const part = guarded.reduce((t, r) => t + BigInt(r.guardrail!.costPicos), 0n);
    const row = month.groups.model!.find((g) => g.key === "guardrail/gr-1");
    assert.ok(row, "the guardrail has its row");
    assert.equal(row.totalUsd, picosToUsd(part), "the guardrails' parts, and only they");
    assert.equal(month.totals.calls, all.length);
    assert.deepEqual(logs.filter((l) => l.includes("checkpoint")), ["info: dashboard: the ledger's checkpoint holds an aggregate an earlier version wrote (its sums counted differently); building it from the journal"]);
    await unlink(stateFile); // no checkpoint: the whole journal is read, and shows the same
    const whole = await serveDashboard(dir);
    try {
      whole.routes.afterListening();
      await whole.routes.ready;
      assert.deepEqual(month, series(await whole.get("month")));
    } finally {
      await whole.close();
    }
  });

  it("keeps no aggregate in the checkpoint when the journal could not be read whole: the next start reads it all again", async () => {
    const file = path.join(dir, "journal", `${journalMonth(NOW)}.jsonl`);
    const s = await serveDashboard(dir);
    try {
      // The month's file becomes unreadable (a directory in its place) after the ledger opened.
      await rename(file, `${file}.away`);
      await mkdir(file);
      s.routes.afterListening();
      await s.routes.ready;
      assert.equal(series(await s.get("month")).totals.calls, 0, "nothing could be read");
    } finally {
      await s.close(); // writes the checkpoint
      await rmdir(file);
      await rename(`${file}.away`, file);
    }
    const again = await serveDashboard(dir);
    try {
      again.routes.afterListening();
      await again.routes.ready;
      assert.equal(again.routes.readCalls, records.length, "the whole journal is read, not an empty aggregate restored");
      assert.equal(series(await again.get("month")).totals.calls, records.length);
    } finally {
      await again.close();
    }
  });
});
