/**
 * What the gateway's loopback HTTP routes share, below the gateway: the request and response
 * types (HTTP/1.1 or HTTP/2), JSON answers, the token check, and the Routes a gateway mounts.
 */
import type http from "node:http";
import type http2 from "node:http2";
import { TOKEN_HEADER, TOKEN_QUERY } from "./protocol";
import { TOKEN_HINT, type GatewaySecret } from "./ledger/secret";

export type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;
/** What the gateway uses of a response; both HTTP/1.1 and HTTP/2 compatibility responses have it. */
export interface AnyResponse extends NodeJS.EventEmitter {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  writeHead(statusCode: number, headers?: http.OutgoingHttpHeaders): unknown;
  setHeader(name: string, value: string): unknown;
  write(chunk: Uint8Array | string): boolean;
  end(chunk?: Uint8Array | string): unknown;
}

/** A set of routes the gateway mounts (the local API, the dashboard): it asks each in turn whether a path is its. */
export interface Routes {
  /** Names the routes in the log when one fails. */
  readonly name: string;
  handles(rawPath: string): boolean;
  handle(req: AnyRequest, res: AnyResponse): Promise<void>;
  /** Work that admitting calls does not need (the dashboard's aggregate), started once the gateway listens. */
  afterListening?(): void;
}

/** True when the request carries this user's token (header, or query for the browser page). */
export function authorized(req: AnyRequest, url: URL, secret: GatewaySecret): boolean {
  const header = req.headers[TOKEN_HEADER];
  return secret.acceptsToken(typeof header === "string" ? header : url.searchParams.get(TOKEN_QUERY));
}

export function forbidden(res: AnyResponse): void {
  json(res, 403, { message: `this route shows individual calls and needs your Bedrock Budget token: ${TOKEN_HINT}` });
}

export function json(res: AnyResponse, status: number, body: unknown): void {
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { "content-type": "application/json", "content-length": String(text.byteLength), "cache-control": "no-store" });
  res.end(text);
}
