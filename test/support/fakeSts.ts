/**
 * A local fake of STS AssumeRole (the AWS Query protocol: a form-encoded POST, an XML answer), as
 * the SDK's credential providers call it for a profile with `role_arn`. It checks the caller's
 * SigV4 signature with `aws4` (sigV4Problem) and hands out fixed temporary credentials.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { FakeCredentials } from "./fakeBedrock";
import { sigV4Problem } from "./fakeAwsJson";

export class FakeSts {
  /** The form fields of each AssumeRole call with a valid signature. */
  readonly assumed: Array<Record<string, string>> = [];
  readonly refused: string[] = [];

  private constructor(private readonly server: http.Server) {}

  static async start(credentials: FakeCredentials, region: string, issued: FakeCredentials): Promise<FakeSts> {
    const server = http.createServer({ keepAliveTimeout: 2000 });
    const fake = new FakeSts(server);
    server.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const problem = req.method !== "POST" || req.url !== "/" ? `${req.method} ${req.url}` : sigV4Problem(req, body, credentials, { service: "sts", region }, []);
        if (problem !== undefined) {
          fake.refused.push(problem);
          res.writeHead(403, { "content-type": "text/xml" });
          return void res.end(`<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>${problem}</Message></Error><RequestId>fake</RequestId></ErrorResponse>`);
        }
        const form = Object.fromEntries(new URLSearchParams(body.toString("utf8")));
        fake.assumed.push(form);
        const expiration = new Date(Date.now() + 3_600_000).toISOString();
        res.writeHead(200, { "content-type": "text/xml" });
        res.end(
          `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>` +
            `<AccessKeyId>${issued.accessKeyId}</AccessKeyId><SecretAccessKey>${issued.secretAccessKey}</SecretAccessKey>` +
            `<SessionToken>${issued.sessionToken ?? "fake-session"}</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
            `<AssumedRoleUser><Arn>${form.RoleArn ?? ""}/${form.RoleSessionName ?? ""}</Arn><AssumedRoleId>AROAFAKE:${form.RoleSessionName ?? ""}</AssumedRoleId></AssumedRoleUser>` +
            `</AssumeRoleResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></AssumeRoleResponse>`,
        );
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
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
}
