/** Chart.js, registering only what the dashboard draws (tree-shaken by esbuild). */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from "chart.js";
import type { CapSeries, DashboardSeriesResponse, SeriesGroup } from "../server/protocol";
import { axisTime, dateTime, modelLabel, usd } from "./format";
import { withAlpha, type Theme } from "./theme";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Filler, Legend, Tooltip);

function applyDefaults(theme: Theme): void {
  Chart.defaults.color = theme.fg;
  Chart.defaults.borderColor = theme.grid;
  Chart.defaults.font.family = theme.font;
  Chart.defaults.font.size = 12;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.responsive = true;
}

const dollarTicks = (value: number | string) => usd(Number(value));

/** Cumulative spend of one cap in its window, the limit as a line, and the projection at the current rate. */
export function capChart(canvas: HTMLCanvasElement, cap: CapSeries, theme: Theme, timeZone: string): Chart<"line", { x: number; y: number }[]> {
  applyDefaults(theme);
  const start = Date.parse(cap.windowStart);
  const end = Date.parse(cap.resetsAt);
  const pts = (p: { t: string; usd: number }[]) => p.map((q) => ({ x: Date.parse(q.t), y: q.usd }));
  const spent = pts(cap.points);
  const top = Math.max(cap.limitUsd, ...cap.projection.points.map((p) => p.usd), ...spent.map((p) => p.y)) * 1.05;
  // Ticks on round local times: every 6 hours of a day, each day of a week, each week of a month.
  const tickStep = cap.window === "day" ? 6 * 3_600_000 : cap.window === "week" ? 86_400_000 : 7 * 86_400_000;
  const config: ChartConfiguration<"line", { x: number; y: number }[]> = {
    type: "line",
    data: {
      datasets: [
        {
          label: "Spent",
          data: spent,
          borderColor: theme.accent,
          backgroundColor: withAlpha(theme.accent, theme.highContrast ? 0 : 0.18),
          fill: "origin",
          borderWidth: 2,
          pointRadius: 0,
          tension: 0,
        },
        {
          label: "Projection",
          data: pts(cap.projection.points),
          borderColor: theme.muted,
          borderDash: [5, 4],
          borderWidth: 1.5,
          pointRadius: (ctx) => (ctx.dataIndex === 1 && cap.projection.reachesAt ? 4 : 0),
          pointBackgroundColor: theme.error,
          pointBorderColor: theme.error,
          fill: false,
        },
        {
          label: `Cap ${usd(cap.limitUsd)}`,
          data: [
            { x: start, y: cap.limitUsd },
            { x: end, y: cap.limitUsd },
          ],
          borderColor: theme.error,
          borderWidth: 1.5,
          borderDash: [2, 3],
          pointRadius: 0,
          fill: false,
        },
      ],
    },
    options: {
      parsing: false,
      normalized: true,
      interaction: { mode: "nearest", intersect: false, axis: "x" },
      scales: {
        x: {
          type: "linear",
          min: start,
          max: end,
          grid: { display: false },
          afterBuildTicks: (axis) => {
            const ticks = [];
            for (let t = start; t <= end; t += tickStep) ticks.push({ value: t });
            axis.ticks = ticks;
          },
          ticks: { autoSkip: false, maxRotation: 0, callback: (v) => axisTime(Number(v), timeZone, cap.window) },
        },
        y: { beginAtZero: true, suggestedMax: top > 0 ? top : 1, grid: { color: theme.grid }, ticks: { maxTicksLimit: 5, callback: dollarTicks } },
      },
      plugins: {
        legend: { display: true, position: "bottom", labels: { boxWidth: 12, boxHeight: 2, padding: 10 } },
        tooltip: {
          callbacks: {
            title: (items) => (items[0] ? dateTime(items[0].parsed.x ?? 0, timeZone) : ""),
            label: (item) => `${item.dataset.label}: ${usd(item.parsed.y ?? 0)}`,
          },
        },
      },
    },
  };
  return new Chart(canvas, config);
}

/** A key keeps its colour for the life of the page, whatever its rank in the current range. */
const colourSlots = new Map<string, Map<string, number>>();
export function colourOf(category: string, key: string, theme: Theme): string {
  let slots = colourSlots.get(category);
  if (!slots) colourSlots.set(category, (slots = new Map()));
  let slot = slots.get(key);
  if (slot === undefined) slots.set(key, (slot = slots.size));
  return theme.series[slot % theme.series.length]!;
}

/** Cost per bucket stacked by group (model or tool). */
export function stackedChart(canvas: HTMLCanvasElement, series: DashboardSeriesResponse, groups: SeriesGroup[], theme: Theme, labelOf: (key: string) => string, category: string): Chart<"bar"> {
  applyDefaults(theme);
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels: series.buckets.map((b) => b.label),
      datasets: groups.map((g) => ({
        label: labelOf(g.key),
        data: g.costUsd,
        backgroundColor: colourOf(category, g.key, theme),
        borderColor: theme.highContrast ? theme.fg : theme.bg,
        borderWidth: theme.highContrast ? 1 : 0,
        borderRadius: 2,
        maxBarThickness: 36,
      })),
    },
    options: {
      scales: {
        x: { stacked: true, grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0, maxTicksLimit: series.bucket === "hour" ? 12 : 16 } },
        y: { stacked: true, beginAtZero: true, grid: { color: theme.grid }, ticks: { maxTicksLimit: 5, callback: dollarTicks } },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12, padding: 10 } },
        tooltip: {
          mode: "index",
          intersect: false,
          filter: (item) => (item.parsed.y ?? 0) > 0,
          callbacks: { label: (item) => `${item.dataset.label}: ${usd(item.parsed.y ?? 0)}` },
        },
      },
    },
  });
}

/** Totals by tag as horizontal bars. */
export function tagChart(canvas: HTMLCanvasElement, groups: SeriesGroup[], theme: Theme): Chart<"bar"> {
  applyDefaults(theme);
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels: groups.map((g) => g.key),
      datasets: [
        {
          label: "Spend",
          data: groups.map((g) => g.totalUsd),
          backgroundColor: groups.map((g) => colourOf("tag", g.key, theme)),
          borderColor: theme.highContrast ? theme.fg : theme.bg,
          borderWidth: theme.highContrast ? 1 : 0,
          borderRadius: 2,
          maxBarThickness: 22,
        },
      ],
    },
    options: {
      indexAxis: "y",
      scales: {
        x: { beginAtZero: true, grid: { color: theme.grid }, ticks: { maxTicksLimit: 5, callback: dollarTicks } },
        y: { grid: { display: false } },
      },
      plugins: { legend: { display: false }, tooltip: { callbacks: { label: (item) => usd(item.parsed.x ?? 0) } } },
    },
  });
}

export const modelName = (key: string) => (key.startsWith("(") ? key : modelLabel(key));
export { Chart };
