/** A warn cap's alert (AlertDispatcher.capWarned) never throws into the settled-call event that calls it. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../../server/log";
import type { AlertChannel } from "../../../server/policy/alertChannels";
import { AlertJournal } from "../../../server/policy/alertJournal";
import { AlertDispatcher } from "../../../server/policy/alerts";
import type { CapFigures } from "../../../server/shared/alertCrossings";

const NOW = new Date("2026-11-29T10:00:00Z");

describe("small fixes: warn-cap alerts", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(os.tmpdir(), "bb-smallfix-alerts-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("capWarned logs and returns when the caps cannot be read, instead of throwing into the call's event", async () => {
    const { journal } = await AlertJournal.open(dir, NOW);
    const errors: string[] = [];
    const channel: AlertChannel = { name: "webhook", target: "http://127.0.0.1:1/hook", send: async () => undefined, close: () => undefined };
    let broken = false;
    const caps = (): CapFigures[] => {
      if (broken) throw new Error("the team store answered nonsense");
      return [];
    };
    const d = new AlertDispatcher(journal, caps, () => channel, createLogger((level, line) => level === "error" && errors.push(line), "error"), () => NOW);
    d.configure({ targets: { webhook: channel.target }, thresholds: [50], user: "alice" });
    broken = true;
    assert.doesNotThrow(() => d.capWarned("daily"));
    assert.deepEqual(errors, ['alerts: cannot alert on warn cap "daily": the team store answered nonsense']);
    await d.close();
  });
});
