/**
 * Notification text from strings others can write: a team's cap names and model globs (team.json
 * in a shared folder or Redis), a gateway's refusal message. VS Code turns `[label](command:…)`,
 * `(https://…)` and `(file:…)` in a notification into a link, and runs a command link's command
 * with its arguments when clicked; breaking `](` apart leaves the text readable and never a link.
 * Pure, tested alone.
 */
import { crossingMessage, type Crossing } from "../server/shared/alertCrossings";

export function notificationText(text: string): string {
  return text.replace(/\]\(/g, "] (");
}

/** A cap crossing one of the alert thresholds, as a notification says it. */
export function crossingNotice(c: Crossing): string {
  return notificationText(crossingMessage(c));
}
