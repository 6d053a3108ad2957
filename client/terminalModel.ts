/**
 * Where new VS Code terminals and debug sessions send Bedrock calls, as plain data (no `vscode`,
 * so it is tested alone): the gateway while it serves; while it is starting, down or failed,
 * still its address, so calls fail to connect instead of going out unmetered, unless the user
 * chose `bedrockBudget.whenGatewayDown: "direct"`.
 */
import type { GatewayStateNotification } from "../server/protocol";

/** A process we could not verify holds the gateway's port: never hand it signed requests. `.invalid` never resolves, and the name says why. */
export const UNVERIFIED_ENDPOINT = "http://gateway-unverified.bedrock-budget.invalid";
/** No address known yet (a port chosen at random, nothing served so far): a name that fails as clearly. */
export const NOT_STARTED_ENDPOINT = "http://gateway-not-started.bedrock-budget.invalid";

export type WhenGatewayDown = "block" | "direct";

/** Only an explicit "direct" lets calls bypass the gateway; anything else (unset, invalid) blocks. */
export function whenGatewayDownOf(value: unknown): WhenGatewayDown {
  return value === "direct" ? "direct" : "block";
}

export interface TerminalInputs {
  /** The latest gateway state; undefined before the background process said anything. */
  state: GatewayStateNotification.Params | undefined;
  /** The last address a gateway served on, if any. */
  lastUrl: string | undefined;
  routeTerminals: boolean;
  whenGatewayDown: WhenGatewayDown;
}

/** The value of AWS_ENDPOINT_URL_BEDROCK_RUNTIME for new terminals and debug sessions; undefined removes it. */
export function terminalEndpoint(i: TerminalInputs): string | undefined {
  if (!i.routeTerminals) return undefined;
  if (i.state?.state === "ready") return i.state.url;
  if (i.whenGatewayDown === "direct") return undefined;
  if (i.state?.state === "error" && i.state.strangerOnPort) return UNVERIFIED_ENDPOINT;
  return i.state?.endpoint ?? i.lastUrl ?? NOT_STARTED_ENDPOINT;
}

/** What the status bar says about terminals while the gateway is not serving. */
export function whenDownNotice(routeTerminals: boolean, whenGatewayDown: WhenGatewayDown): { short: string; sentence: string } {
  if (!routeTerminals) {
    return { short: "terminals not routed", sentence: "VS Code terminals are not routed through the gateway (bedrockBudget.routeTerminals is off)." };
  }
  return whenGatewayDown === "block"
    ? {
        short: "terminal calls blocked",
        sentence: 'Until it serves, Bedrock calls from VS Code terminals are blocked: they fail to connect. (Set bedrockBudget.whenGatewayDown to "direct" to let them go to Bedrock unmetered.)',
      }
    : {
        short: "terminal calls unmetered",
        sentence: 'Until it serves, Bedrock calls from VS Code terminals go to Bedrock directly, unmetered (bedrockBudget.whenGatewayDown is "direct").',
      };
}
