/** The text of the invalid-settings notification (pure, tested alone): what is wrong and what it does to calls. */
import { notificationText } from "./notificationText";

/**
 * `blocked`: a bad value decides money. `anotherWindowServes`: this window follows the gateway of
 * another VS Code window, which runs on that window's settings, so this window's bad value refuses
 * nothing until this window takes the gateway over.
 */
export function configErrorMessage(errors: string[], blocked: boolean, anotherWindowServes: boolean): string {
  const consequence = !blocked
    ? "It is ignored: its default or last good value applies."
    : anotherWindowServes
      ? "Another VS Code window runs the gateway with its own settings, so calls are not refused for this yet; if this window takes the gateway over, it refuses Bedrock calls until this is fixed."
      : "Bedrock calls through the gateway are refused until it is fixed.";
  // The errors quote keys and values, a repository's workspace settings among them.
  return notificationText(`Bedrock Budget: invalid setting ${errors.join("; ")}. ${consequence}`);
}
