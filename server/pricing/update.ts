/**
 * `bedrock-budget prices update`: fetch the Price List for a region, map it onto the table, write
 * the local price file, and say what changed and what kept the built-in figure.
 */
import type { CredentialSource } from "../credentials";
import { writePriceFile } from "../metering/priceFile";
import { BUILT_IN_PRICES, type PriceTable } from "../metering/prices";
import { fetchBedrockPrices } from "./fetchPrices";
import { mapPriceList } from "./priceList";

export async function updatePrices(ledgerDir: string, region: string, credentials: CredentialSource, now = new Date(), table: PriceTable = BUILT_IN_PRICES): Promise<string> {
  const { entries, skipped } = await fetchBedrockPrices(region, credentials);
  const mapping = mapPriceList(table, entries, skipped);
  const priced = Object.keys(mapping.rows);
  if (priced.length === 0) {
    throw new Error(`the AWS Price List lists no on-demand token prices for ${region} that match the table's models: the price file was not written (the built-in prices stay in force)`);
  }
  const file = await writePriceFile(ledgerDir, {
    version: 1,
    source: "AWS Price List",
    fetchedAt: now.toISOString(),
    region,
    rows: mapping.rows,
    missing: mapping.missing,
  });
  const lines = [
    `wrote ${file}: ${priced.length} model row(s) from the AWS Price List (${region}, ${now.toISOString().slice(0, 10)})`,
    `${mapping.missing.length} row(s) the Price List does not price keep the built-in figure: ${mapping.missing.join(", ") || "none"}`,
  ];
  if (mapping.unmatched.length) lines.push(`Price List models no table row matches (not used): ${mapping.unmatched.join(", ")}`);
  if (mapping.skipped.length) lines.push(`products not read: ${mapping.skipped.map((s) => `${s.usagetype} (${s.reason})`).join("; ")}`);
  lines.push("a running gateway picks the file up on its own.");
  return `${lines.join("\n")}\n`;
}
