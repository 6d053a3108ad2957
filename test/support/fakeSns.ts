/**
 * A local fake of Amazon SNS as `@aws-sdk/client-sns` speaks to it: the AWS Query protocol (POST /,
 * `application/x-www-form-urlencoded` with `Action` and `Version=2010-03-31`, XML answers), SigV4
 * verified for service `sns` in the topic's region (fakeAwsJson.ts's check, independent of the SDK).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { sigV4Problem } from "./fakeAwsJson";
import type { FakeCredentials } from "./fakeBedrock";

export interface SnsPublish {
  contentType: string;
  params: Record<string, string>;
}

export class FakeSns {
  /** Every Publish that passed the signature check, in order. */
  readonly publishes: SnsPublish[] = [];
  /** Requests refused (bad signature, wrong protocol), with why. */
  readonly refused: string[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly server: http.Server) {}

  static async start(credentials: FakeCredentials, region: string): Promise<FakeSns> {
    const server = http.createServer({ keepAliveTimeout: 2000 });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const fake = new FakeSns(server);
    server.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => fake.handle(req, Buffer.concat(chunks), res, credentials, region));
    });
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves once `n` publishes arrived (bounded by the test's timeout). */
  async published(n: number): Promise<void> {
    while (this.publishes.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse, credentials: FakeCredentials, region: string): void {
    const contentType = req.headers["content-type"] ?? "";
    const params = Object.fromEntries(new URLSearchParams(body.toString("utf8")));
    const refuse = (status: number, code: string, message: string) => {
      this.refused.push(`${code}: ${message}`);
      xml(res, status, `<ErrorResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>fake</RequestId></ErrorResponse>`);
    };
    if (req.method !== "POST" || req.url !== "/") return refuse(404, "NotFound", `${req.method} ${req.url}`);
    if (!contentType.startsWith("application/x-www-form-urlencoded")) return refuse(400, "InvalidParameter", `query protocol expected, got Content-Type ${contentType}`);
    const problem = sigV4Problem(req, body, credentials, { service: "sns", region }, []);
    if (problem !== undefined) return refuse(403, "SignatureDoesNotMatch", problem);
    if (params.Action !== "Publish" || params.Version !== "2010-03-31") return refuse(400, "InvalidAction", `Action ${params.Action} Version ${params.Version}`);
    // What real SNS checks of a Publish: a FIFO topic needs a group id; group and deduplication ids are
    // 1-128 ASCII letters, digits and punctuation; a Subject is ASCII, one line, at most 100 characters.
    const fifo = (params.TopicArn ?? "").endsWith(".fifo");
    if (fifo && params.MessageGroupId === undefined) return refuse(400, "InvalidParameter", "Invalid parameter: The MessageGroupId parameter is required for FIFO topics");
    for (const name of ["MessageGroupId", "MessageDeduplicationId"] as const) {
      const value = params[name];
      if (value !== undefined && !SNS_ID.test(value)) return refuse(400, "InvalidParameter", `Invalid parameter: ${name} Reason: up to 128 alphanumeric and punctuation characters`);
    }
    if (params.Subject !== undefined && !/^[\x20-\x7e]{1,100}$/.test(params.Subject)) return refuse(400, "InvalidParameter", "Invalid parameter: Subject");
    this.publishes.push({ contentType, params });
    for (const wake of this.waiters.splice(0)) wake();
    xml(
      res,
      200,
      `<PublishResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>fake-${this.publishes.length}</MessageId></PublishResult><ResponseMetadata><RequestId>fake-request</RequestId></ResponseMetadata></PublishResponse>`,
    );
  }
}

/** An SNS message group or deduplication id: 1-128 of a-z, A-Z, 0-9 and ASCII punctuation (no space). */
const SNS_ID = /^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/;

function xml(res: http.ServerResponse, status: number, text: string): void {
  const body = Buffer.from(text);
  res.writeHead(status, { "content-type": "text/xml", "content-length": String(body.length), "x-amzn-requestid": "fake-request" });
  res.end(body);
}
