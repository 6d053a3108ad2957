/** The one reader of the gateway's server-sent events (the editor's dashboard panel, a follower window). Pure over a Web stream. */
import type { GatewayEvent } from "../protocol";

/** Server-sent events from a fetch body: `event:` + `data:` blocks separated by a blank line. */
export async function* parseSse(body: ReadableStream<Uint8Array>, signal?: AbortSignal, onBad?: (err: Error) => void): AsyncIterable<GatewayEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  try {
    while (!signal?.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if ((event === "call" || event === "status") && data.length) {
          try {
            yield { event, data: JSON.parse(data.join("\n")) } as GatewayEvent;
          } catch (err) {
            onBad?.(err as Error); // a malformed event is skipped
          }
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}
