/**
 * The shared UTF-8 decoders: decode() without `stream` keeps no state between calls, so one of
 * each serves every call (a decoder per request body was an allocation per call).
 */
export const UTF8 = new TextDecoder();
/** Throws on bytes that are not UTF-8 (a request body must be UTF-8 JSON). */
export const UTF8_STRICT = new TextDecoder("utf-8", { fatal: true });
