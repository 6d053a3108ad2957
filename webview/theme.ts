/**
 * Colours for the charts, read from the page's CSS custom properties (which map to VS Code's
 * --vscode-* theme variables, with light/dark fallbacks in a plain browser). Re-read when the
 * VS Code theme (body class) or the OS colour scheme changes.
 */
export interface Theme {
  fg: string;
  muted: string;
  grid: string;
  bg: string;
  warn: string;
  error: string;
  accent: string;
  series: string[];
  highContrast: boolean;
  font: string;
}

export function readTheme(): Theme {
  const css = getComputedStyle(document.body);
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  const series: string[] = [];
  for (let i = 1; i <= 8; i++) series.push(v(`--bb-series-${i}`, "#888"));
  return {
    fg: v("--bb-fg", "#333"),
    muted: v("--bb-muted", "#777"),
    grid: v("--bb-grid", "rgba(128,128,128,0.25)"),
    bg: v("--bb-bg", "#fff"),
    warn: v("--bb-warn", "#bf8700"),
    error: v("--bb-error", "#cf222e"),
    accent: v("--bb-accent", "#0969da"),
    series,
    highContrast: document.body.classList.contains("vscode-high-contrast") || document.body.classList.contains("vscode-high-contrast-light") || matchMedia("(forced-colors: active)").matches,
    font: v("--bb-font", "system-ui, sans-serif"),
  };
}

export function onThemeChange(cb: () => void): void {
  new MutationObserver(cb).observe(document.body, { attributes: true, attributeFilter: ["class"] });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", cb);
  matchMedia("(forced-colors: active)").addEventListener("change", cb);
}

/** The same colour with an alpha, for fills (accepts #rgb, #rrggbb, #rrggbbaa, rgb()). */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{3,8})$/i.exec(color.trim());
  if (hex) {
    let h = hex[1]!;
    if (h.length === 3 || h.length === 4) h = [...h].map((c) => c + c).join("");
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  const rgb = /^rgba?\(([^)]+)\)$/i.exec(color.trim());
  if (rgb) {
    const [r, g, b] = rgb[1]!.split(/[ ,/]+/);
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  return color;
}
