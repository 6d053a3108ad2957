/**
 * Money is kept as integer pico-dollars (1e-12 USD) in a bigint, so that sums never drift and a
 * reservation returns to exactly zero when its call settles. Prices per million tokens map to a
 * whole number of pico-dollars per token (e.g. $0.035 / 1M tokens = 35,000 pico-dollars / token).
 */
export type Picos = bigint;

export const PICOS_PER_USD = 1_000_000_000_000n;

/**
 * Money as it is written down (journal lines, call records, the team's spend files): a whole,
 * non-negative number of pico-dollars in decimal digits, leading zeros allowed, which BigInt reads
 * exactly. No sign, point or exponent: "12.5", "-1" and "1e3" are not money.
 */
export const PICOS_TEXT = /^\d+$/;

/**
 * Whether `v` is money written as PICOS_TEXT in at most `maxDigits` digits. The journal sets no
 * bound (a figure it once accepted must still load: the caps count it); a file another machine
 * writes may (a spend file's 30 digits, $10^18, is more than any real spend).
 */
export function isPicosText(v: unknown, maxDigits = Infinity): v is string {
  return typeof v === "string" && v.length <= maxDigits && PICOS_TEXT.test(v);
}

/** `v` read as pico-dollars when isPicosText(v, maxDigits) holds, else undefined. */
export function picosOfText(v: unknown, maxDigits?: number): Picos | undefined {
  return isPicosText(v, maxDigits) ? BigInt(v) : undefined;
}

/** Exact conversion of a decimal USD amount (number or decimal string) to pico-dollars. */
export function usdToPicos(usd: number | string): Picos {
  const text = typeof usd === "number" ? numberToPlainString(usd) : usd.trim();
  const match = /^(-)?(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new Error(`not a decimal dollar amount: ${JSON.stringify(usd)}`);
  const [, sign, whole, frac = ""] = match;
  if (/[1-9]/.test(frac.slice(12))) {
    throw new Error(`dollar amount ${text} is finer than one pico-dollar`);
  }
  const picos = BigInt(whole!) * PICOS_PER_USD + BigInt((frac + "000000000000").slice(0, 12));
  return sign ? -picos : picos;
}

/** Price per million tokens → pico-dollars per token, rounded up (exact for up to 6 decimals). */
export function perMillionToPicosPerToken(pricePer1M: number | string): Picos {
  return ceilDiv(usdToPicos(pricePer1M), 1_000_000n);
}

export function ceilDiv(a: bigint, b: bigint): bigint {
  if (b <= 0n) throw new Error("ceilDiv by a non-positive divisor");
  // Stryker disable next-line EqualityOperator: at a = 0 both branches give 0.
  return a >= 0n ? (a + b - 1n) / b : a / b;
}

/** Applies a multiplier given in basis points (10000 = 1.0), rounding up so caps stay safe. */
export function applyBasisPoints(amount: Picos, basisPoints: number): Picos {
  if (!Number.isInteger(basisPoints) || basisPoints < 0) throw new Error(`bad basis points ${basisPoints}`);
  return ceilDiv(amount * BigInt(basisPoints), 10_000n);
}

/** For display and JSON APIs only: never sum the result. */
export function picosToUsd(picos: Picos): number {
  const whole = picos / PICOS_PER_USD;
  const frac = picos % PICOS_PER_USD;
  return Number(whole) + Number(frac) / 1e12;
}

/** Exact decimal string, trailing zeros trimmed (e.g. "0.000042"). */
export function picosToDecimalString(picos: Picos): string {
  const negative = picos < 0n;
  const abs = negative ? -picos : picos;
  const whole = abs / PICOS_PER_USD;
  const frac = (abs % PICOS_PER_USD).toString().padStart(12, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${frac ? "." + frac : ""}`;
}

/** "$3.42"; amounts under a cent keep two significant digits ("$0.0042", "$0.000000035"). */
export function formatUsd(picos: Picos): string {
  const usd = picosToUsd(picos);
  const abs = Math.abs(usd);
  const sign = usd < 0 ? "-" : "";
  // Stryker disable next-line EqualityOperator: at exactly $0.01 the sub-cent path also prints "$0.01".
  if (abs === 0 || abs >= 0.01) return `${sign}$${abs.toFixed(2)}`;
  const decimals = Math.min(12, Math.ceil(-Math.log10(abs)) + 1);
  return `${sign}$${abs.toFixed(decimals).replace(/0+$/, "")}`;
}

function numberToPlainString(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`not a finite dollar amount: ${n}`);
  // toFixed avoids exponent notation; 12 decimals is the pico resolution (usdToPicos reads the
  // trailing zeros as the same amount).
  return n.toFixed(12);
}
