/**
 * Runs the extension in a real VS Code: code-server 4.100.3 (= VS Code 1.100.3, Node extension
 * host) driven through Debian's /usr/bin/chromium by playwright-core.
 * See /work/shared/docs/vscode-e2e.md; `bash scripts/e2e-setup.sh` installs code-server into
 * .vscode-test/code-server. Everything listens on 127.0.0.1 only and every wait is bounded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, type Dirent } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import { freePort } from "../../support/ports";

export const ROOT = path.resolve(__dirname, "../../..");
export const CODE_SERVER = path.join(ROOT, ".vscode-test/code-server/node_modules/code-server/out/node/entry.js");
export const CHROMIUM = process.env.E2E_CHROMIUM ?? "/usr/bin/chromium";
export const RESULTS_DIR = path.join(ROOT, "test-results/e2e");

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export interface VsCodeSession {
  page: Page;
  browser: Browser;
  /** Absolute path of the opened workspace folder (temp, removed by close()). */
  workspace: string;
  userDataDir: string;
  extensionsDir: string;
  port: number;
  url: string;
  /** code-server stdout/stderr, browser console, and every log file under <userDataDir>/logs (incl. exthost). */
  logs(): string;
  /** Stops chromium and the code-server process group this session started; removes the temp dirs. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** A .vsix installed with `code-server --install-extension` (separate call before start). */
  vsix?: string;
  /** Unpacked extension folders (each with a package.json); copied into the extensions dir as publisher.name-version. */
  extensionDirs?: string[];
  /** Files to create in the workspace, path relative to the workspace → content. */
  workspaceFiles?: Record<string, string>;
  /** Extra user settings (merged over the harness defaults). */
  settings?: Record<string, unknown>;
  /** Extra environment for code-server and therefore for the extension host. */
  env?: Record<string, string>;
  /** Bound for the whole start-up (install, server, workbench). Default 90 s. */
  timeoutMs?: number;
}

const MAX_LOG = 200_000;

/** Process groups and temp dirs of sessions not yet closed; cleaned up if the test process exits without close(). */
const live = new Map<string, { pid?: number }>();
process.once("exit", () => {
  for (const [dir, { pid }] of live) {
    if (pid !== undefined) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});

/** The DOM bits the page-side callbacks use (tsconfig has no "dom" lib). */
interface El {
  innerText: string;
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): ArrayLike<El>;
}

export async function startVsCode(opts: StartOptions = {}): Promise<VsCodeSession> {
  if (!existsSync(CODE_SERVER)) throw new Error(`code-server is not installed at ${CODE_SERVER}; run: bash scripts/e2e-setup.sh`);
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found; run: bash scripts/e2e-setup.sh`);
  const timeoutMs = opts.timeoutMs ?? 90_000;
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1_000, deadline - Date.now());

  const base = await mkdtemp(path.join(os.tmpdir(), "bb-e2e-"));
  const tracked: { pid?: number } = {};
  live.set(base, tracked);
  const userDataDir = path.join(base, "data");
  const extensionsDir = path.join(base, "extensions");
  const workspace = path.join(base, "workspace");
  await Promise.all([mkdir(path.join(userDataDir, "User"), { recursive: true }), mkdir(extensionsDir), mkdir(workspace)]);

  const settings = {
    "security.workspace.trust.enabled": false,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.enableExperiments": false,
    "extensions.autoCheckUpdates": false,
    "extensions.autoUpdate": false,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "chat.disableAIFeatures": true,
    ...opts.settings,
  };
  await writeFile(path.join(userDataDir, "User/settings.json"), JSON.stringify(settings, null, 2));
  // code-server's workbench is a remote window: machine-scoped settings (bedrockBudget's money keys)
  // come from the remote ("Machine") settings. Values only in User settings are dropped at the
  // first configuration change (seen when a debug session starts), as in an SSH or WSL window.
  await mkdir(path.join(userDataDir, "Machine"), { recursive: true });
  await writeFile(path.join(userDataDir, "Machine/settings.json"), JSON.stringify(opts.settings ?? {}, null, 2));
  for (const [rel, content] of Object.entries(opts.workspaceFiles ?? {})) {
    const file = path.join(workspace, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }

  let output = "";
  const append = (s: string) => {
    output += s;
    if (output.length > MAX_LOG) output = output.slice(-MAX_LOG);
  };
  const consoleLines: string[] = [];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // code-server would otherwise write ~/.config/code-server/config.yaml
    CODE_SERVER_CONFIG: path.join(base, "config.yaml"),
    ...opts.env,
  };
  const serverArgs = [
    "--auth", "none",
    "--extensions-dir", extensionsDir,
    "--user-data-dir", userDataDir,
    "--disable-telemetry",
    "--disable-update-check",
    "--disable-workspace-trust",
  ];

  let child: ChildProcess | undefined;
  let browser: Browser | undefined;
  let closed = false;
  let port = 0;

  const logs = () => collectLogs(output, consoleLines, userDataDir);
  const close = async () => {
    if (closed) return;
    closed = true;
    await browser?.close().catch(() => undefined);
    if (child) await killGroup(child);
    await rm(base, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
    live.delete(base);
  };

  try {
    // Unpacked extensions first: on its first run over an empty extensions dir VS Code scans the
    // folder and writes extensions.json; folders added after that file exists are ignored.
    for (const dir of opts.extensionDirs ?? []) {
      const pkg = JSON.parse(await readFile(path.join(dir, "package.json"), "utf8")) as {
        publisher?: string; name?: string; version?: string;
      };
      if (!pkg.publisher || !pkg.name || !pkg.version) throw new Error(`${dir}/package.json needs publisher, name and version`);
      await cp(dir, path.join(extensionsDir, `${pkg.publisher}.${pkg.name}-${pkg.version}`.toLowerCase()), { recursive: true });
    }
    if (opts.vsix) {
      const r = await runOnce(process.execPath, [CODE_SERVER, ...serverArgs, "--install-extension", path.resolve(opts.vsix)], env, Math.min(left(), 60_000));
      append(`--- code-server --install-extension ${opts.vsix} (exit ${r.code})\n${r.output}\n`);
      if (r.code !== 0 || !/successfully installed/i.test(r.output)) throw new Error(`installing ${opts.vsix} failed (exit ${r.code}):\n${r.output}`);
    }

    // Start code-server on a free loopback port (retry if another process grabs it first).
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      append(`--- code-server on 127.0.0.1:${port}\n`);
      const from = output.length;
      child = spawn(process.execPath, [CODE_SERVER, ...serverArgs, "--bind-addr", `127.0.0.1:${port}`, workspace], {
        env,
        cwd: workspace,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true, // own process group, so close() also ends the extension host and pty hosts
      });
      tracked.pid = child.pid;
      child.stdout!.on("data", (d: Buffer) => append(d.toString()));
      child.stderr!.on("data", (d: Buffer) => append(d.toString()));
      const listening = await waitFor(
        () => {
          if (/HTTP server listening on/.test(output.slice(from))) return true;
          if (child!.exitCode !== null || child!.signalCode !== null) return false;
          return undefined;
        },
        Math.min(left(), 30_000),
      );
      if (listening === true) break;
      const inUse = /EADDRINUSE/.test(output.slice(from));
      await killGroup(child);
      child = undefined;
      if (!inUse || attempt >= 2) throw new Error(`code-server did not start listening`);
    }

    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: Math.min(left(), 30_000),
      // keep chromium's crash reports and dconf cache out of ~/.config and ~/.cache
      env: { ...process.env, XDG_CONFIG_HOME: path.join(base, "xdg-config"), XDG_CACHE_HOME: path.join(base, "xdg-cache") },
    });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    // Loopback only: the workbench would try the marketplace (open-vsx) and others.
    await context.route(/^https?:\/\//, (route) => {
      const host = new URL(route.request().url()).hostname;
      return host === "127.0.0.1" || host === "localhost" ? route.continue() : route.abort();
    });
    const page = await context.newPage();
    page.on("console", (m) => {
      if (consoleLines.length < 2_000) consoleLines.push(`[${m.type()}] ${m.text()}`);
    });
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    await page.goto(url, { timeout: Math.min(left(), 30_000) });
    await page.waitForSelector(".statusbar", { state: "visible", timeout: left() });
    // The explorer lists the files once the folder has been resolved through the remote connection.
    if (Object.keys(opts.workspaceFiles ?? {}).length > 0) {
      await page.waitForSelector(".explorer-folders-view .monaco-list-row", { timeout: Math.min(left(), 30_000) });
    }

    return { page, browser, workspace, userDataDir, extensionsDir, port, url, logs, close };
  } catch (err) {
    const text = logs();
    await close();
    const e = err instanceof Error ? err : new Error(String(err));
    e.message += `\n----- logs -----\n${text.slice(-20_000)}`;
    throw e;
  }
}

// ------------------------------------------------------------------------------------ helpers

/** Texts of all status bar items, left to right (icons appear as their codicon text, if any). */
export async function statusBarTexts(page: Page): Promise<string[]> {
  return page.$$eval(".statusbar-item", (els) =>
    (els as unknown as El[]).map((e) => (e.innerText || e.getAttribute("aria-label") || "").trim()).filter((t) => t.length > 0),
  );
}

/** Waits until a status bar item's text equals the string (or contains it) or matches the regex; returns that text. */
export async function waitForStatusBarItem(page: Page, text: string | RegExp, timeoutMs = 30_000): Promise<string> {
  const matches = (t: string) => (typeof text === "string" ? t === text || t.includes(text) : text.test(t));
  let last: string[] = [];
  const found = await waitFor(async () => {
    last = await statusBarTexts(page);
    return last.find(matches);
  }, timeoutMs);
  if (found === undefined) throw new Error(`status bar item ${String(text)} not shown within ${timeoutMs} ms; status bar: ${JSON.stringify(last)}`);
  return found;
}

/** Messages of the notification toasts currently visible. Info toasts hide by themselves after ~15 s. */
export async function notifications(page: Page): Promise<string[]> {
  return page.$$eval(".notification-toast .notification-list-item-message", (els) =>
    (els as unknown as El[]).map((e) => e.innerText.trim()),
  );
}

/** A notification as the user sees it: its message and the severity its icon shows. */
export interface NotificationItem {
  message: string;
  severity: "error" | "warning" | "info" | "unknown";
}

/**
 * Reads a notification list item (a toast's or the center's) in the page: the message and the
 * severity of its icon (VS Code sets codicon-error / codicon-warning / codicon-info on it).
 * A string, so it can be used inside page.evaluate of other helpers.
 */
const READ_ITEM = `(item) => {
  const icon = item.querySelector(".notification-list-item-icon");
  const classes = icon ? Array.from(icon.classList) : [];
  const severity = ["error", "warning", "info"].find((s) => classes.includes("codicon-" + s)) ?? "unknown";
  const message = item.querySelector(".notification-list-item-message");
  return { message: message ? message.innerText.trim() : "", severity };
}`;

/** Notifications in the center (all not yet dismissed, also those whose toast has hidden), with their severity; opens and closes it. */
export async function notificationCenterItems(page: Page, timeoutMs = 5_000): Promise<NotificationItem[]> {
  const center = page.locator(".notifications-center");
  const bell = page.locator('[id="status.notifications"]');
  const wasOpen = await center.evaluate((e) => (e as unknown as { classList: { contains(c: string): boolean } }).classList.contains("visible")).catch(() => false);
  if (!wasOpen) await bell.click({ timeout: timeoutMs });
  await page.locator(".notifications-center.visible").waitFor({ state: "visible", timeout: timeoutMs });
  const list = (await page.evaluate(
    `Array.from(document.querySelectorAll(".notifications-center .notification-list-item")).map(${READ_ITEM})`,
  )) as NotificationItem[];
  if (!wasOpen) await bell.click({ timeout: timeoutMs }).catch(() => undefined);
  return list;
}

/** Messages in the notifications center; see notificationCenterItems. */
export async function notificationCenter(page: Page, timeoutMs = 5_000): Promise<string[]> {
  return (await notificationCenterItems(page, timeoutMs)).map((n) => n.message);
}

/**
 * From now on, records every toast as it appears (VS Code builds one container per notification
 * it toasts, even one whose text repeats an earlier one; while the center is open it toasts none;
 * it may take a toast out of the DOM and put it back, which is still one toast).
 * Read them with toastsSeen.
 */
export async function watchToasts(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    if (window.__bbToasts) return;
    window.__bbToasts = [];
    // VS Code takes a toast out of the DOM and puts it back as it lays them out: one entry per element.
    const known = new WeakSet();
    new MutationObserver((records) => {
      for (const r of records) for (const node of r.addedNodes) {
        if (node.nodeType !== 1) continue;
        const found = node.matches(".notification-toast-container") ? [node] : Array.from(node.querySelectorAll(".notification-toast-container"));
        for (const el of found) {
          if (known.has(el)) continue;
          known.add(el);
          // Read once rendered, and again when asked: a toast disposed meanwhile keeps the first reading.
          const entry = { el, snap: undefined };
          window.__bbToasts.push(entry);
          setTimeout(() => {
            const item = el.querySelector(".notification-list-item");
            if (item) entry.snap = (${READ_ITEM})(item);
          }, 0);
        }
      }
    }).observe(document.body, { childList: true, subtree: true });
  })()`);
}

/** Every toast shown since watchToasts, oldest first (its text is read now; a hidden toast keeps it). */
export async function toastsSeen(page: Page): Promise<NotificationItem[]> {
  return (await page.evaluate(
    `(window.__bbToasts ?? []).map(({ el, snap }) => {
      const item = el.querySelector(".notification-list-item");
      const now = item ? (${READ_ITEM})(item) : undefined;
      return now && now.message ? now : snap ?? { message: "", severity: "unknown" };
    })`,
  )) as NotificationItem[];
}

/**
 * Waits for a notification whose message matches; returns the message. Watches the toasts and,
 * every few seconds, the notifications center (toasts hide by themselves after ~15 s).
 */
export async function waitForNotification(page: Page, re: RegExp, timeoutMs = 30_000): Promise<string> {
  let last: string[] = [];
  const inCenter = async () => (await notificationCenter(page).catch(() => [] as string[])).find((t) => re.test(t));
  const toast = async () => {
    last = await notifications(page);
    return last.find((t) => re.test(t));
  };
  // Toasts first: while the center is open, new notifications go there instead of toasting, so
  // the center is only looked into between spells of watching the toasts.
  const deadline = Date.now() + timeoutMs;
  let found: string | undefined;
  while (found === undefined && Date.now() < deadline) {
    found = (await waitFor(toast, Math.min(4_000, Math.max(100, deadline - Date.now())))) ?? (await inCenter());
  }
  if (found === undefined) throw new Error(`no notification matching ${re} within ${timeoutMs} ms; shown: ${JSON.stringify(last)}`);
  return found;
}

/** Opens a workspace file by clicking it in the Explorer ("dir/sub/a.ts" expands the folders). */
export async function openFile(page: Page, relPath: string, timeoutMs = 15_000): Promise<void> {
  const parts = relPath.split("/").filter(Boolean);
  const explorer = page.locator(".explorer-folders-view");
  for (let i = 0; i < parts.length; i++) {
    const row = explorer.locator(".monaco-list-row", { has: page.locator(".label-name", { hasText: new RegExp(`^${escapeRe(parts[i]!)}$`) }) }).first();
    await row.waitFor({ state: "visible", timeout: timeoutMs });
    const last = i === parts.length - 1;
    if (!last && (await row.getAttribute("aria-expanded")) === "true") continue;
    await row.click({ timeout: timeoutMs });
  }
  const name = parts[parts.length - 1]!;
  await page
    .locator(".tabs-container .tab.active", { has: page.locator(".label-name", { hasText: new RegExp(`^${escapeRe(name)}$`) }) })
    .waitFor({ state: "visible", timeout: timeoutMs });
  await page.locator(".editor-instance .monaco-editor .view-lines").first().waitFor({ state: "visible", timeout: timeoutMs });
}

/** Texts of the code lenses in the visible editors (one entry per lens; " | "-separated lenses are split). */
export async function codeLensTexts(page: Page): Promise<string[]> {
  return page.$$eval(".codelens-decoration", (els) =>
    (els as unknown as El[]).flatMap((e) => {
      const parts = Array.from(e.querySelectorAll("a, span > span")).map((a) => a.innerText.trim());
      const own = e.innerText.trim();
      const list = parts.filter((t) => t.length > 0 && t !== "|");
      return list.length > 0 ? list : own ? [own] : [];
    }),
  );
}

/** Runs a command by its title through F1 (the command palette). Ctrl+Shift+P may be taken by the browser. */
export async function runCommand(page: Page, title: string, timeoutMs = 15_000): Promise<void> {
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await page.locator(".monaco-workbench").focus().catch(() => undefined);
  await page.keyboard.press("F1");
  await input.waitFor({ state: "visible", timeout: timeoutMs });
  await input.fill(`>${title}`);
  const row = page
    .locator(".quick-input-widget .quick-input-list .monaco-list-row", {
      has: page.locator(".label-name", { hasText: new RegExp(`^${escapeRe(title)}$`) }),
    })
    .first();
  try {
    await row.waitFor({ state: "visible", timeout: timeoutMs });
  } catch {
    const shown = await page.$$eval(".quick-input-widget .quick-input-list .monaco-list-row", (els) =>
      (els as unknown as El[]).map((e) => e.innerText.replace(/\s+/g, " ").trim()),
    );
    await page.keyboard.press("Escape");
    throw new Error(`command "${title}" not in the palette within ${timeoutMs} ms; shown: ${JSON.stringify(shown)}`);
  }
  await row.click({ timeout: timeoutMs });
  await input.waitFor({ state: "hidden", timeout: timeoutMs }).catch(() => undefined);
}

/** Saves a full-page screenshot to test-results/e2e/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(RESULTS_DIR, `${name.replace(/[^\w.-]+/g, "_")}.png`);
  await mkdir(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: file, timeout: 15_000 });
  return file;
}

/** README's images (docs/images), taken by the suite so they show the extension as it is. */
export const IMAGES_DIR = path.join(ROOT, "docs/images");
const MAX_IMAGE_BYTES = 150 * 1024;

/** Saves a README image cropped to an element, or to a region of the page; refuses one too large for the README. */
export async function readmeImage(page: Page, name: string, target: Locator | { x: number; y: number; width: number; height: number }): Promise<string> {
  const png = "screenshot" in target ? await target.screenshot({ timeout: 15_000 }) : await page.screenshot({ clip: target, timeout: 15_000 });
  if (png.length > MAX_IMAGE_BYTES) throw new Error(`${name} is ${png.length} bytes; README images stay under ${MAX_IMAGE_BYTES}`);
  await mkdir(IMAGES_DIR, { recursive: true });
  const file = path.join(IMAGES_DIR, name);
  await writeFile(file, png);
  return file;
}

// ------------------------------------------------------------------------------------ internals

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Polls `probe` every 100 ms until it returns something other than undefined, or the time runs out. */
async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() >= end) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}


function runOnce(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let output = "";
    c.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    c.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[harness] timed out after ${timeoutMs} ms`;
      void killGroup(c);
    }, timeoutMs);
    c.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** SIGTERM to the child's process group, SIGKILL after 5 s. Only the group this harness spawned. */
async function killGroup(c: ChildProcess): Promise<void> {
  if (c.pid === undefined) return;
  const pid = c.pid;
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      /* already gone */
    }
  };
  const groupAlive = () => {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  signal("SIGTERM");
  const gone = await waitFor(() => (groupAlive() ? undefined : true), 5_000);
  if (!gone) {
    signal("SIGKILL");
    await waitFor(() => (groupAlive() ? undefined : true), 2_000);
  }
}

function collectLogs(output: string, consoleLines: string[], userDataDir: string): string {
  const parts = [`===== code-server stdout/stderr =====\n${output}`];
  parts.push(`===== browser console (${consoleLines.length}) =====\n${consoleLines.join("\n")}`);
  for (const file of listLogFiles(path.join(userDataDir, "logs"))) {
    try {
      const text = readFileSync(file, "utf8");
      parts.push(`===== ${path.relative(userDataDir, file)} =====\n${text.length > 50_000 ? text.slice(-50_000) : text}`);
    } catch {
      /* removed meanwhile */
    }
  }
  return parts.join("\n");
}

function listLogFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".log")) out.push(p);
    }
  };
  walk(dir);
  return out;
}
