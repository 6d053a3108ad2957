/** Everything one request handler needs, assembled once by the gateway. */
import type { AwsCredentialIdentity } from "@smithy/types";
import type { Caps } from "../budget/caps";
import type { Config } from "../config/schema";
import type { Ledger } from "../ledger/ledger";
import type { CallRecord } from "../ledger/types";
import type { Logger, RepeatLog } from "../log";
import type { PriceBook } from "../metering/prices";
import type { ProfileLookup } from "./profileLookup";
import type { InboundGuard } from "./inbound";
import type { CapAlerts } from "../policy/alerts";
import type { RateLimiter } from "../policy/rateLimit";
import type { ProfileCredentials } from "./callerCredentials";
import type { AdmissionGate } from "./admissionGate";

export interface GatewayContext {
  config: Config;
  prices: PriceBook;
  /** Looks up application inference profiles (control plane); absent: they are priced at the dearest rate. */
  profiles?: ProfileLookup;
  /** Every cap a call must pass, personal and team. */
  caps: Caps;
  ledger: Ledger;
  credentials: () => Promise<AwsCredentialIdentity>;
  /** The credentials of the profiles named in `callers`: their calls are verified and re-signed with them. */
  callerProfiles: ProfileCredentials;
  /** Every caller's token bucket and request counts (one per gateway, kept across settings changes). */
  rateLimiter: RateLimiter;
  /** Shut while the journal is counted into a cap or quota that starts from zero: calls wait there before they are decided (one per gateway). */
  admissions: AdmissionGate;
  /** Limits on work for requests not yet proven, and the body-bytes budget they share (one per gateway). */
  inbound: InboundGuard;
  log: Logger;
  /** For messages a call can repeat every time (a full disk, an unpriced model): said once a minute with a count. */
  logRepeat: RepeatLog;
  user: string;
  timeZone: string;
  now: () => Date;
  /** The alert channels (webhook, SNS); the gateway tells them of a `warn` cap passed (capWarned, from the call's capAction event). */
  alerts?: CapAlerts;
  /** `serve --simulate`: calls go to the built-in simulator, SigV4 with any key is accepted, answers are labelled. */
  simulated?: boolean;
  /** Tells every listener (status bar, dashboard, lenses) that a call settled. */
  publish(record: CallRecord): void;
}
