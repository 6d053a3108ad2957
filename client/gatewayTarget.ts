/**
 * Which gateway the dashboard panel, the endpoint commands and other extensions may talk to, as
 * plain data (no `vscode`, so it is tested alone): only one the language server reports ready,
 * which proved it holds this user's secret. A gateway that is starting, has failed or has gone
 * left its port to whoever binds it next (another user's process), so its last address and
 * token are never used then: the token would hand that process the user's call log.
 */
import type { GatewayStateNotification } from "../server/protocol";
import { notificationText } from "./notificationText";

export interface GatewayTarget {
  url: string;
  /** For the call-level routes (calls, events, series, export); from the "ready" gateway state. */
  token?: string;
}

export function liveGateway(state: GatewayStateNotification.Params | undefined): GatewayTarget | undefined {
  if (state?.state !== "ready") return undefined;
  return { url: state.url, ...(state.token ? { token: state.token } : {}) };
}

/** Why a command that needs the gateway cannot act now. */
export function notServingMessage(state: GatewayStateNotification.Params | undefined): string {
  // The message can quote a setting's value (a path), so it gets no link syntax.
  return state?.state === "error" ? notificationText(`Bedrock Budget: the gateway is not serving: ${state.message}`) : "Bedrock Budget: the gateway is not running yet.";
}
