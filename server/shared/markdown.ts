/**
 * Text others wrote (a model id from the source, a cap id from team.json) shown as written in
 * Markdown (a hover, a tooltip, a table cell): whitespace flattened to one line and every ASCII
 * punctuation mark backslash-escaped (CommonMark renders each as itself), so it never makes a link,
 * image, autolink, HTML, emphasis or a table column. Pure.
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/\s+/g, " ").replace(/[!-/:-@[-`{-~]/g, "\\$&");
}
