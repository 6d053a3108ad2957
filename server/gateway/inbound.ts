/** What the gateway checks of every inbound request before anything else happens. */
import type { AwsCredentialIdentity } from "@smithy/types";
import type { AnyRequest } from "./listener";
import { parseAuthorization, verifySignature } from "./sigv4";

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;

/** DNS-rebinding defence: a page on evil.example resolving to 127.0.0.1 still sends its own Host. */
export function isLoopbackHost(req: AnyRequest): boolean {
  const host = req.headers.host ?? req.headers[":authority"];
  return typeof host === "string" && LOOPBACK_HOST.test(host);
}

export class BodyTooLarge extends Error {}

export function readBody(req: AnyRequest, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new BodyTooLarge(`the request body is ${declared} bytes; the gateway accepts at most ${maxBytes} (maxRequestBytes)`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off("data", onData);
        reject(new BodyTooLarge(`the request body is over ${maxBytes} bytes, the most the gateway accepts (maxRequestBytes)`));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks, size)));
    req.once("error", reject);
  });
}

export type Authenticated =
  | { ok: true; kind: "sigv4"; region: string; credentials: AwsCredentialIdentity }
  | { ok: true; kind: "bearer"; region: string }
  | { ok: false; message: string };

/**
 * Verifies the caller's SigV4 signature against the credentials the gateway resolved itself, so
 * only someone holding those credentials can spend through it. Bearer API keys travel as they are.
 */
export async function authenticate(input: {
  method: string;
  rawPath: string;
  headers: AnyRequest["headers"];
  body: Buffer;
  credentials: () => Promise<AwsCredentialIdentity>;
  defaultRegion: string;
  now: Date;
}): Promise<Authenticated> {
  const parsed = parseAuthorization(input.headers.authorization);
  switch (parsed.kind) {
    case "none":
      return { ok: false, message: "the request is not signed; Bedrock Budget forwards only SigV4-signed requests or Bedrock API keys" };
    case "malformed":
      return { ok: false, message: parsed.reason };
    case "bearer":
      return { ok: true, kind: "bearer", region: input.defaultRegion };
    case "sigv4": {
      let credentials: AwsCredentialIdentity;
      try {
        credentials = await input.credentials();
      } catch (err) {
        return { ok: false, message: `the gateway could not resolve AWS credentials to check the signature (${(err as Error).message}); set awsProfile or sign in (aws sso login)` };
      }
      const reason = await verifySignature({
        method: input.method,
        rawPath: input.rawPath,
        headers: input.headers,
        body: input.body,
        auth: parsed.auth,
        credentials,
        now: input.now,
      });
      if (reason) return { ok: false, message: `Bedrock Budget refused the request: ${reason}` };
      return { ok: true, kind: "sigv4", region: parsed.auth.region, credentials };
    }
  }
}
