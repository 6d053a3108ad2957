/**
 * The dashboard page's markup, shared by the gateway (a browser tab) and the VS Code panel
 * (webview URIs, webview.cspSource). Pure, no imports: the extension bundle includes it.
 */

/** 24 random bytes as base64url, from Web Crypto (Node ≥ 20 and browsers). */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The CSP of the page as the gateway serves it: nothing but its own script, style and API. */
export function gatewayCsp(nonce: string): string {
  return `default-src 'none'; style-src 'self' 'nonce-${nonce}'; script-src 'nonce-${nonce}'; img-src data:; connect-src 'self'`;
}

/** The CSP inside a VS Code webview: resources only from the extension's out/webview; no network (the host relays). */
export function webviewCsp(nonce: string, cspSource: string): string {
  return `default-src 'none'; style-src ${cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}'; img-src ${cspSource} data:; font-src ${cspSource}; connect-src 'none'`;
}

export function dashboardHtml(opts: { nonce: string; csp: string; scriptUri: string; styleUri: string }): string {
  const attr = (s: string) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${attr(opts.csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bedrock Budget</title>
<link rel="stylesheet" href="${attr(opts.styleUri)}" nonce="${attr(opts.nonce)}">
</head>
<body>
<div id="app" aria-busy="true"><p class="loading">Loading Bedrock Budget…</p></div>
<script nonce="${attr(opts.nonce)}" src="${attr(opts.scriptUri)}"></script>
</body>
</html>
`;
}
