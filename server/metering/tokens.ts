/**
 * Token counts that err high: a BPE tokenizer's count scaled by a safety factor, and images by
 * Anthropic's formula. Shared by the gateway's estimate and the editor's code lenses. Pure.
 */
import { countTokens } from "gpt-tokenizer/encoding/cl100k_base";
import { imageSize } from "image-size";

/**
 * Claude's tokenizer (≈65K vocabulary) yields more tokens than OpenAI's cl100k for the same text:
 * about 1.1–1.2× on English prose and code in public comparisons. 1.2 covers that without doubling
 * the reservation. cl100k (not o200k) is the closer baseline: o200k's larger vocabulary would make
 * the gap wider and less predictable, notably for non-English text.
 */
export const TOKEN_SAFETY_FACTOR = 1.2;

/** Anthropic: tokens ≈ width × height / 750; images are downscaled so one costs at most ~1600. */
export const MAX_IMAGE_TOKENS = 1600;
/** A PDF page costs its text (up to ~3000 tokens on a dense page) plus the page image Claude also sees. */
export const PDF_TOKENS_PER_PAGE = 3000 + MAX_IMAGE_TOKENS;
/** Documents we cannot open (S3, unknown formats): a flat figure, noted. */
export const ASSUMED_OPAQUE_DOCUMENT_TOKENS = 50_000;
/** Video is billed per sampled frame; without decoding it assume a long clip's worth of frames. */
export const ASSUMED_VIDEO_TOKENS = 50_000;
/** Anthropic injects a tool-use system prompt (~350 tokens) when tools are defined. */
export const TOOL_USE_OVERHEAD_TOKENS = 350;
/** Chat templates add a few tokens per message (role markers, separators). */
export const PER_MESSAGE_OVERHEAD_TOKENS = 5;

const COUNT_OPTIONS = { disallowedSpecial: new Set<string>() };

/**
 * Longest run of non-space (or space) characters counted in one piece. The tokenizer's merges are
 * quadratic in a piece's length (80K "a"s took 5 s here, blocking the gateway's event loop), and
 * runs that long are not prose: base64 or padding pasted as text. Counted in slices instead, which
 * can only add a token at each cut (the count errs high).
 */
export const MAX_RUN_COUNTED_WHOLE = 128;
const LONG_RUN = new RegExp(`(?<!\\S)\\S{${MAX_RUN_COUNTED_WHOLE + 1},}|(?<!\\s)\\s{${MAX_RUN_COUNTED_WHOLE + 1},}`, "g");

/** Raw cl100k token count, special-token text counted as ordinary text (never throws). */
export function countRawTokens(text: string): number {
  if (text.length === 0) return 0;
  if (text.length <= MAX_RUN_COUNTED_WHOLE) return countTokens(text, COUNT_OPTIONS);
  let total = 0;
  let from = 0;
  for (const run of text.matchAll(LONG_RUN)) {
    const at = run.index!;
    if (at > from) total += countTokens(text.slice(from, at), COUNT_OPTIONS);
    for (const slice of slices(run[0])) total += countTokens(slice, COUNT_OPTIONS);
    from = at + run[0].length;
  }
  if (from < text.length) total += countTokens(from === 0 ? text : text.slice(from), COUNT_OPTIONS);
  return total;
}

/** `run` cut into pieces of at most MAX_RUN_COUNTED_WHOLE characters, never between a surrogate pair. */
function* slices(run: string): Generator<string> {
  for (let i = 0; i < run.length; ) {
    let end = Math.min(i + MAX_RUN_COUNTED_WHOLE, run.length);
    const code = run.charCodeAt(end - 1);
    if (end < run.length && code >= 0xd800 && code <= 0xdbff) end++; // keep the pair whole
    yield run.slice(i, end);
    i = end;
  }
}

/** Raw tokenizer count → the reservation figure. */
export function scaleTokens(rawTokens: number): number {
  return Math.ceil(rawTokens * TOKEN_SAFETY_FACTOR);
}

/** Worst-case token count of a text for any model in the price table. */
export function estimateTokensOfText(text: string): number {
  return scaleTokens(countRawTokens(text));
}

/** Tokens of one image from its bytes; unknown or unreadable → the cap. */
export function imageTokens(bytes: Uint8Array | undefined): number {
  if (!bytes || bytes.length === 0) return MAX_IMAGE_TOKENS;
  try {
    const { width, height } = imageSize(bytes);
    if (!width || !height) return MAX_IMAGE_TOKENS;
    return Math.min(MAX_IMAGE_TOKENS, Math.ceil((width * height) / 750));
  } catch {
    return MAX_IMAGE_TOKENS;
  }
}
