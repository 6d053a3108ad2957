/**
 * A local fake of an AWS JSON 1.1 service (POST /, `X-Amz-Target: <Prefix>.<Operation>`,
 * `application/x-amz-json-1.1`), verifying SigV4 with `aws4` (independent of the SDK's signer)
 * for its signing name and region. The Pricing and Cost Explorer fakes build on it.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { RequestSigner, type Request as Aws4Request } from "aws4";
import type { FakeCredentials } from "./fakeBedrock";

export interface JsonHit {
  operation: string;
  body: Record<string, unknown>;
  /** The signing name and region of the request's credential scope. */
  service: string;
  region: string;
}

export type JsonAnswer = { status: 200; body: unknown } | { status: number; type: string; message: string };

const MAX_SKEW_MS = 15 * 60_000;

export class FakeAwsJsonService {
  readonly hits: JsonHit[] = [];
  private constructor(
    private readonly server: http.Server,
    private readonly credentials: FakeCredentials,
    private readonly signing: { service: string; region: string; targetPrefix: string },
    private readonly answer: (hit: JsonHit) => JsonAnswer,
  ) {}

  static async start(
    credentials: FakeCredentials,
    signing: { service: string; region: string; targetPrefix: string },
    answer: (hit: JsonHit) => JsonAnswer,
  ): Promise<FakeAwsJsonService> {
    const server = http.createServer({ keepAliveTimeout: 2000 });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const fake = new FakeAwsJsonService(server, credentials, signing, answer);
    server.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        try {
          fake.handle(req, Buffer.concat(chunks), res);
        } catch (err) {
          send(res, { status: 500, type: "InternalServerException", message: `fake bug: ${String(err)}` });
        }
      });
    });
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    if (req.method !== "POST" || req.url !== "/") return send(res, { status: 404, type: "UnknownOperationException", message: `${req.method} ${req.url}` });
    const target = header(req, "x-amz-target") ?? "";
    const [prefix, operation = ""] = target.split(".");
    if (prefix !== this.signing.targetPrefix) return send(res, { status: 400, type: "UnknownOperationException", message: `X-Amz-Target ${target}` });
    if (!/^application\/x-amz-json-1\.1/.test(header(req, "content-type") ?? "")) {
      return send(res, { status: 400, type: "SerializationException", message: "Content-Type must be application/x-amz-json-1.1" });
    }
    const problem = sigV4Problem(req, body, this.credentials, this.signing, ["x-amz-target"]);
    if (problem !== undefined) return send(res, { status: 403, type: "InvalidSignatureException", message: `The request signature we calculated does not match the signature you provided. (${problem})` });
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body.toString("utf8") || "{}") as Record<string, unknown>;
    } catch {
      return send(res, { status: 400, type: "SerializationException", message: "body is not JSON" });
    }
    const hit: JsonHit = { operation, body: parsed, service: this.signing.service, region: this.signing.region };
    this.hits.push(hit);
    send(res, this.answer(hit));
  }
}

/**
 * Why a request's SigV4 signature is not the one `credentials` make for `signing` (undefined when it
 * is), checked with `aws4`, independent of the SDK's signer. `mustSign`: headers the protocol needs signed.
 */
export function sigV4Problem(
  req: http.IncomingMessage,
  body: Buffer,
  credentials: FakeCredentials,
  signing: { service: string; region: string },
  mustSign: string[],
): string | undefined {
  const authz = header(req, "authorization") ?? "";
  const parsed = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(authz.trim());
  if (!parsed) return "missing or malformed Authorization header";
  const [, credential = "", signedList = "", signature = ""] = parsed;
  const [akid, date, region, service, terminator] = credential.split("/");
  if (akid !== credentials.accessKeyId) return "unknown access key";
  if (region !== signing.region) return `credential scoped to region ${region}, expected ${signing.region}`;
  if (service !== signing.service) return `credential scoped to service ${service}, expected ${signing.service}`;
  if (terminator !== "aws4_request") return "credential scope must end in aws4_request";
  const amzDate = header(req, "x-amz-date") ?? "";
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || !amzDate.startsWith(date ?? "-")) return "missing or mismatched x-amz-date";
  const when = Date.parse(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  if (Math.abs(Date.now() - when) > MAX_SKEW_MS) return "x-amz-date outside 15 minutes";
  const names = signedList.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date")) return "host and x-amz-date must be signed";
  for (const name of mustSign) if (!names.includes(name)) return `${name} must be signed`;
  const headers: Record<string, string> = {};
  const include: Record<string, boolean> = {};
  for (const name of names) {
    const v = header(req, name);
    if (v === undefined) return `signed header ${name} is missing`;
    headers[name] = v;
    include[name] = true;
  }
  const signer = new RequestSigner(
    { method: "POST", path: "/", headers, body, service: signing.service, region: signing.region, doNotModifyHeaders: true, extraHeadersToInclude: include } as Aws4Request,
    { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}) },
  );
  signer.datetime = amzDate;
  const expected = signer.signature();
  const a = createHash("sha256").update(expected).digest();
  const b = createHash("sha256").update(signature).digest();
  return timingSafeEqual(a, b) ? undefined : "signature mismatch";
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const values: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === name) values.push(req.rawHeaders[i + 1]!.trim());
  }
  return values.length ? values.join(",") : undefined;
}

function send(res: http.ServerResponse, answer: JsonAnswer): void {
  const body = Buffer.from(JSON.stringify("type" in answer ? { __type: answer.type, message: answer.message } : answer.body));
  const headers: Record<string, string> = { "content-type": "application/x-amz-json-1.1", "content-length": String(body.length), "x-amzn-requestid": `fake-${Date.now()}` };
  if ("type" in answer) headers["x-amzn-errortype"] = answer.type;
  res.writeHead(answer.status, headers);
  res.end(body);
}
