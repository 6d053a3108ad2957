// Writes package.json contributes.configuration and capabilities.untrustedWorkspaces from server/config/schema.ts.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { settingsContribution, untrustedWorkspaces } from "./settingsContribution";

const file = path.join(__dirname, "..", "package.json");
const pkg = JSON.parse(readFileSync(file, "utf8"));
pkg.contributes = { ...pkg.contributes, configuration: settingsContribution() };
pkg.capabilities = { ...pkg.capabilities, untrustedWorkspaces: untrustedWorkspaces() };
writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
console.log(`wrote ${Object.keys(pkg.contributes.configuration.properties).length} settings to package.json`);
