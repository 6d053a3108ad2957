/** The local price file: validation, row-by-row override of the built-in table, age. */
import assert from "node:assert/strict";
import { parsePriceFile, priceSource, tableAge, tableWithPriceFile, type PriceFile } from "../../../server/metering/priceFile";
import { BUILT_IN_PRICES, PriceBook } from "../../../server/metering/prices";
import { priceTableLine } from "../../../server/statusText";

const FILE: PriceFile = {
  version: 1,
  source: "AWS Price List",
  fetchedAt: "2026-11-29T07:00:00.000Z",
  region: "us-east-1",
  rows: { "amazon.nova-pro-v1:0": { input: "0.9", output: "3.6", cacheRead: "0.225" } },
  missing: [],
};

describe("price file", () => {
  it("replaces the rows it holds, with their source and date; other rows keep the built-in figure", () => {
    const { table, info } = tableWithPriceFile(FILE);
    const book = new PriceBook({}, table);
    const pro = book.rates("amazon.nova-pro-v1:0");
    assert.deepEqual([pro.input, pro.output, pro.cacheRead], [900_000n, 3_600_000n, 225_000n]);
    assert.equal(pro.source, "price file: AWS Price List 2026-11-29 (us-east-1), read 2026-11-29", "a fetched row does not claim to be built in");
    assert.equal(priceSource(pro.source), "AWS Price List 2026-11-29 (us-east-1) (read 2026-11-29)");
    const lite = book.rates("amazon.nova-lite-v1:0");
    assert.deepEqual([lite.input, lite.source], [new PriceBook().rates("amazon.nova-lite-v1:0").input, new PriceBook().rates("amazon.nova-lite-v1:0").source]);
    assert.deepEqual(info, { source: "AWS Price List", date: "2026-11-29", region: "us-east-1", fetchedRows: 1, builtInRows: BUILT_IN_PRICES.models.length - 1 });
  });

  it("a file for another region prices that region's calls; us-east-1 calls keep the built-in figures", () => {
    const { table, info } = tableWithPriceFile({ ...FILE, region: "ap-south-1" });
    const book = new PriceBook({}, table);
    const builtIn = new PriceBook().rates("amazon.nova-pro-v1:0");
    const mumbai = book.rates("amazon.nova-pro-v1:0", { region: "ap-south-1" });
    assert.deepEqual([mumbai.input, mumbai.output, mumbai.cacheRead], [900_000n, 3_600_000n, 225_000n]);
    assert.match(mumbai.source, /^price file: ap-south-1 \(ap-south-1\): AWS Price List 2026-11-29 \(ap-south-1\), read 2026-11-29$/);
    const virginia = book.rates("amazon.nova-pro-v1:0", { region: "us-east-1" });
    assert.deepEqual([virginia.input, virginia.output, virginia.source], [builtIn.input, builtIn.output, builtIn.source]);
    assert.equal(info.region, "ap-south-1");
    assert.equal(info.fetchedRows, 1);
  });

  it("a file for a region a table glob covers (eu-*) wins over the table there; other regions of the glob keep the table rate", () => {
    const { table } = tableWithPriceFile({ ...FILE, region: "eu-west-1", rows: { "amazon.nova-pro-v1:0": { input: "1.5", output: "6" } } });
    const book = new PriceBook({}, table);
    assert.deepEqual([book.rates("amazon.nova-pro-v1:0", { region: "eu-west-1" }).input, book.rates("amazon.nova-pro-v1:0", { region: "eu-west-1" }).output], [1_500_000n, 6_000_000n]);
    // eu-north-1 is not the file's region: the table's own eu-* row still prices it.
    assert.equal(book.rates("amazon.nova-pro-v1:0", { region: "eu-north-1" }).input, new PriceBook().rates("amazon.nova-pro-v1:0", { region: "eu-north-1" }).input);
  });

  it("without a file, the table is the built-in one, dated by its oldest check", () => {
    const { table, info } = tableWithPriceFile(undefined);
    assert.equal(table, BUILT_IN_PRICES);
    assert.equal(info.source, "built-in");
    assert.equal(info.date, BUILT_IN_PRICES.models.map((r) => r.checked).sort()[0]);
  });

  it("rejects a file that is not a price file, naming the file and the fix", () => {
    assert.throws(() => parsePriceFile("{", "/l/aws-prices.json"), /\/l\/aws-prices\.json is not JSON.*prices update/);
    assert.throws(() => parsePriceFile(JSON.stringify({ ...FILE, rows: { x: { input: "-1", output: "1" } } }), "f"), /f is not a valid price file \(rows\.x\.input/);
    // A row of 0 would make the model's calls free: refused, so the start stops and a live reload keeps the table in force.
    for (const zero of ["0", "0.000"]) {
      assert.throws(() => parsePriceFile(JSON.stringify({ ...FILE, rows: { x: { input: "1", output: zero } } }), "f"), /f is not a valid price file \(rows\.x\.output: a price above 0 \(no Bedrock model is free per token\)/);
    }
    assert.doesNotThrow(() => parsePriceFile(JSON.stringify({ ...FILE, rows: { x: { input: "0.035", output: "10" } } }), "f"));
  });

  it("flags a table older than 60 days", () => {
    assert.deepEqual(tableAge("2026-09-30", new Date("2026-11-29T12:00:00Z")), { days: 60, stale: false });
    assert.deepEqual(tableAge("2026-09-29", new Date("2026-11-29T12:00:00Z")), { days: 61, stale: true });
    assert.match(priceTableLine({ source: "built-in", date: "2026-09-01", ageDays: 89, stale: true, fetchedRows: 0, builtInRows: 52 }), /^WARNING: prices: built-in table checked 2026-09-01; 89 day\(s\) old: older than 60 days/);
  });
});
