/**
 * The per-user secret in `<ledger>/gateway.secret` (0600, in the 0700 ledger folder). Only this
 * user's processes can read it, so it proves things to them without crossing the wire:
 * - the gateway answers a follower's health challenge with HMAC-SHA256(secret, challenge), which a
 *   squatter on the port cannot compute (the port is in the MAC, so it cannot relay the challenge
 *   to the real gateway elsewhere either);
 * - the local API's call-level routes need the token derived from it (another HMAC, with a label
 *   no challenge can take, so asking for a proof never reveals the token).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { link, lstat, open, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { FILE_MODE, privateDir } from "./privateFiles";

export const SECRET_FILE = "gateway.secret";
/** Where a user finds how to reach the call-level routes (in 403 answers). */
export const TOKEN_HINT =
  "open the dashboard from VS Code, or the URL `bedrock-budget status` prints; tools send the token in the x-bedrock-budget-token header " +
  "(or ?token=), derived from the gateway.secret file in the ledger folder, readable only by its owner";
/** A health challenge: 16 to 128 base64url characters (a follower sends 32 random bytes). */
export const CHALLENGE_RE = /^[A-Za-z0-9_-]{16,128}$/;

export class GatewaySecret {
  private constructor(private readonly key: Buffer, readonly file: string) {}

  /** Reads the ledger's secret, creating it (atomically, 0600) on first use. */
  static async load(ledgerDir: string): Promise<GatewaySecret> {
    await privateDir(ledgerDir);
    const file = path.join(ledgerDir, SECRET_FILE);
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await readSecret(file);
      if (existing) return new GatewaySecret(existing, file);
      // A complete file linked into place: a concurrent reader never sees it half-written.
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
      const fh = await open(tmp, "wx", FILE_MODE);
      try {
        await fh.writeFile(`${randomBytes(32).toString("hex")}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await link(tmp, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      } finally {
        await rm(tmp, { force: true });
      }
    }
    throw new Error(`could not create ${file}`);
  }

  /** Reads the ledger's secret without creating anything (the CLI's status); undefined when there is none yet. */
  static async read(ledgerDir: string): Promise<GatewaySecret | undefined> {
    const file = path.join(ledgerDir, SECRET_FILE);
    const key = await readSecret(file);
    return key ? new GatewaySecret(key, file) : undefined;
  }

  /** The proof a gateway listening on `port` gives for `challenge`. */
  prove(challenge: string, port: number): string {
    return this.mac(`bedrock-budget health v1\n${port}\n${challenge}`);
  }

  /** Whether `proof` is what this user's gateway on `port` answers to `challenge`. */
  verify(challenge: string, port: number, proof: unknown): boolean {
    return typeof proof === "string" && sameText(proof, this.prove(challenge, port));
  }

  /** The local API token: the same for every process of this user on this ledger. */
  token(): string {
    return this.mac("bedrock-budget api token v1");
  }

  /** Constant-time comparison with the token. */
  acceptsToken(candidate: string | undefined | null): boolean {
    return typeof candidate === "string" && sameText(candidate, this.token());
  }

  private mac(text: string): string {
    return createHmac("sha256", this.key).update(text).digest("base64url");
  }
}

/** A fresh random challenge for a health check. */
export function newChallenge(): string {
  return randomBytes(32).toString("base64url");
}

/** Equal strings, compared in time independent of where they differ (hashing first evens out lengths). */
function sameText(a: string, b: string): boolean {
  const ha = createHmac("sha256", "compare").update(a).digest();
  const hb = createHmac("sha256", "compare").update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

async function readSecret(file: string): Promise<Buffer | undefined> {
  let info;
  try {
    info = await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  if (!info.isFile()) throw new Error(`${file} is not a regular file: remove it so the gateway can create its secret`);
  if (typeof process.getuid === "function" && info.uid !== process.getuid()) {
    throw new Error(`${file} belongs to another user (uid ${info.uid}): remove it, or set ledgerDir to a folder you own`);
  }
  const text = (await readFile(file, "utf8")).trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`${file} does not hold a secret (64 hex digits): remove it so the gateway makes a new one`);
  return Buffer.from(text, "hex");
}
