/** The invalid-settings notification says what the bad value does to calls, for the window that runs the gateway and for one that follows another's. */
import assert from "node:assert/strict";
import { configErrorMessage } from "../../../client/configErrorModel";

describe("invalid settings notification text", () => {
  const errors = ["bedrockBudget.caps[0].limitUsd: Too small: expected number to be >0"];

  it("a bad key that decides money, in the window running the gateway: calls are refused until it is fixed", () => {
    assert.equal(
      configErrorMessage(errors, true, false),
      "Bedrock Budget: invalid setting bedrockBudget.caps[0].limitUsd: Too small: expected number to be >0. Bedrock calls through the gateway are refused until it is fixed.",
    );
  });

  it("the same in a window following another window's gateway: not refused yet, refused if it takes over", () => {
    const text = configErrorMessage(errors, true, true);
    assert.match(text, /Another VS Code window runs the gateway with its own settings, so calls are not refused for this yet/);
    assert.match(text, /if this window takes the gateway over, it refuses Bedrock calls until this is fixed/);
    assert.doesNotMatch(text, /are refused until it is fixed/);
  });

  it("a bad harmless key is ignored, wherever the gateway runs", () => {
    for (const follows of [false, true]) assert.match(configErrorMessage(["bedrockBudget.logLevel: bad"], false, follows), /invalid setting bedrockBudget\.logLevel: bad\. It is ignored: its default or last good value applies\.$/);
  });
});
