/**
 * Draws the extension's 128×128 icon (media/icon.png, committed): a gold brick wall, the hard
 * dollar wall, on a dark rounded tile. Run: npx tsx scripts/make-icon.ts. Deterministic output.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { PNG } from "pngjs";

const SIZE = 128;
type Rgba = [number, number, number, number];
const TILE: Rgba = [0x1e, 0x2a, 0x38, 255];
const GOLD: Rgba = [0xf2, 0xb6, 0x32, 255];
const GOLD_DARK: Rgba = [0xc8, 0x8a, 0x12, 255];
const CLEAR: Rgba = [0, 0, 0, 0];

/** Inside a square of side SIZE with corners rounded by `r`. */
function inRoundedTile(x: number, y: number, r: number): boolean {
  const cx = Math.min(Math.max(x, r), SIZE - 1 - r);
  const cy = Math.min(Math.max(y, r), SIZE - 1 - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
}

/** The wall: four courses of bricks, each offset by half a brick, with a darker lower edge per brick. */
function wallColour(x: number, y: number): Rgba | undefined {
  const left = 20, right = 108, top = 40, courseH = 18, courses = 4, mortar = 3, brickW = 28;
  if (x < left || x >= right || y < top || y >= top + courses * courseH) return undefined;
  const course = Math.floor((y - top) / courseH);
  const inCourseY = (y - top) % courseH;
  if (inCourseY < mortar) return undefined;
  const offset = course % 2 === 0 ? 0 : brickW / 2;
  const inBrickX = (x - left + offset) % brickW;
  if (inBrickX < mortar) return undefined;
  return inCourseY >= courseH - 4 ? GOLD_DARK : GOLD;
}

/** A coin resting on top of the wall, right of centre. */
function coinColour(x: number, y: number): Rgba | undefined {
  const cx = 84, cy = 26, r = 13;
  const d2 = (x - cx) ** 2 + (y - cy) ** 2;
  if (d2 > r * r) return undefined;
  return d2 > (r - 3) ** 2 ? GOLD_DARK : GOLD;
}

const png = new PNG({ width: SIZE, height: SIZE });
for (let y = 0; y < SIZE; y++) {
  for (let x = 0; x < SIZE; x++) {
    const colour = !inRoundedTile(x, y, 22) ? CLEAR : coinColour(x, y) ?? wallColour(x, y) ?? TILE;
    png.data.set(colour, (y * SIZE + x) * 4);
  }
}
const out = path.join(__dirname, "..", "media", "icon.png");
writeFileSync(out, PNG.sync.write(png));
console.log(`wrote ${out}`);
