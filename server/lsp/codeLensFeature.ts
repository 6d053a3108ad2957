/**
 * Code lenses, hovers and diagnostics over the Bedrock call sites of open documents. Call sites
 * are found once per document version; lenses are resolved (priced) only when shown; everything
 * refreshes when prices, caps or settings change.
 */
import type { CodeLens, CodeLensParams, Connection, Hover, HoverParams } from "vscode-languageserver";
import { CodeLensRefreshRequest, TextDocuments } from "vscode-languageserver";
import { TextDocument } from "vscode-languageserver-textdocument";
import type { Config } from "../config/schema";
import type { Logger } from "../log";
import { usdToPicos } from "../metering/money";
import { PriceBook, type PriceTable } from "../metering/prices";
import { loadPriceTable } from "../metering/priceFile";
import { ledgerDirOf } from "../config/load";
import type { StatusResponse } from "../protocol";
import { initParsers, isSupportedLanguage, type CallSite } from "./callSites";
import { DocumentTrees } from "./callSites/documentTrees";
import { hoverAt, lensesFor, resolveLens } from "./codeLenses";
import { diagnosticsFor, type CapLeft } from "./lensDiagnostics";
import { callSiteEstimate, type TodayHistory } from "./lensModel";

export class CodeLensFeature {
  private readonly documents = new TextDocuments(TextDocument);
  private readonly sites = new Map<string, { version: number; sites: Promise<CallSite[]> }>();
  /** A syntax tree per open document: an edit reparses incrementally instead of from scratch. */
  private readonly trees = new DocumentTrees();
  private prices = new PriceBook();
  private today: TodayHistory = new Map();
  private caps: CapLeft[] = [];
  private pricingKey = "";
  /** The gateway's price table (its ledger's price file applied), re-read when the status names a new one. */
  private table: PriceTable | undefined;
  private tableKey = "";
  /** What the lenses and warnings show of the last status: a change refreshes them. */
  private figuresKey = "";
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly log: Logger,
    private readonly config: () => Config | undefined,
    private readonly options: { refreshSupported: boolean },
  ) {
    this.documents.onDidChangeContent((e) => void this.publishDiagnostics(e.document));
    this.documents.onDidClose((e) => {
      this.sites.delete(e.document.uri);
      this.trees.forget(e.document.uri);
      void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
    });
    this.documents.listen(connection);
  }

  onConfig(config: Config): void {
    const key = JSON.stringify(config.pricing);
    if (key !== this.pricingKey) {
      this.pricingKey = key;
      this.prices = new PriceBook(config.pricing, this.table);
    }
    this.refresh();
  }

  /** Loads the ledger's price file so hovers show the figures and source the gateway uses. */
  private reloadTable(key: string): void {
    const config = this.config();
    if (!config) return;
    this.tableKey = key;
    void loadPriceTable(ledgerDirOf(config)).then(
      ({ table }) => {
        if (this.tableKey !== key) return;
        this.table = table;
        this.prices = new PriceBook(config.pricing, table);
        this.refresh();
      },
      (err: Error) => this.log.warn(`lenses: ${err.message}`),
    );
  }

  /** New figures: today's history per model feeds the lenses, what is left of each cap the warnings. */
  onStatus(status: StatusResponse): void {
    const tableKey = status.prices ? `${status.prices.source} ${status.prices.date} ${status.prices.fetchedRows}` : "";
    if (tableKey !== this.tableKey) this.reloadTable(tableKey);
    this.today = new Map(Object.entries(status.todayByModel).map(([model, t]) => [model, { calls: t.calls, costPicos: usdToPicos(t.costExact) }]));
    this.caps = status.caps.map((c) => ({
      id: c.id,
      limitPicos: usdToPicos(c.limitExact),
      spentPicos: usdToPicos(c.spentExact),
      reservedPicos: usdToPicos(c.reservedExact),
      window: c.window,
      ...(c.model ? { model: c.model } : {}),
      ...(c.callers ? { callers: c.callers } : {}),
      ...(c.tags ? { tags: c.tags } : {}),
    }));
    // Today's figures per model too: a lens's "today: N calls, $X" froze when only they changed.
    const figuresKey = JSON.stringify([
      this.caps.map((c) => [c.id, String(c.limitPicos), String(c.spentPicos)]),
      [...this.today].map(([model, t]) => [model, t.calls, String(t.costPicos)]),
    ]);
    if (figuresKey !== this.figuresKey) {
      this.figuresKey = figuresKey;
      this.refresh();
    }
  }

  async provide(params: CodeLensParams): Promise<CodeLens[]> {
    const config = this.config();
    const document = this.documents.get(params.textDocument.uri);
    if (!config || !document) return [];
    return lensesFor(document.uri, await this.sitesOf(document), config);
  }

  resolve(lens: CodeLens): CodeLens {
    return resolveLens(lens, this.prices, this.today, this.config()?.guardrailPricing);
  }

  async hover(params: HoverParams): Promise<Hover | null> {
    const document = this.documents.get(params.textDocument.uri);
    if (!document) return null;
    return hoverAt(await this.sitesOf(document), params.position, this.prices, this.caps, this.config()?.guardrailPricing);
  }

  private sitesOf(document: TextDocument): Promise<CallSite[]> {
    const cached = this.sites.get(document.uri);
    if (cached && cached.version === document.version) return cached.sites;
    const { uri, languageId, version } = document;
    const text = document.getText(); // this version's text, whatever arrives before the parsers are ready
    const sites = isSupportedLanguage(languageId)
      ? initParsers()
          // Closed or edited while the parsers loaded: a tree kept now would outlive the close (leaked).
          .then(() => (this.isCurrent(document, version) ? this.trees.callSites(uri, languageId, text) : []))
          .catch((err: Error) => {
            this.log.warn(`could not read ${uri} for Bedrock calls: ${err.message}`);
            return [];
          })
      : Promise.resolve([]);
    this.sites.set(document.uri, { version: document.version, sites });
    return sites;
  }

  private async publishDiagnostics(document: TextDocument): Promise<void> {
    const config = this.config();
    if (!config) return;
    const version = document.version;
    const sites = await this.sitesOf(document);
    // A closed document's warnings were cleared on close, an edited one's are published by its own
    // change: these would outlast both (a stale warning in Problems for a file no longer open).
    if (!this.isCurrent(document, version)) return;
    const estimates = sites.map((site) => callSiteEstimate(site, this.prices, config.guardrailPricing));
    const diagnostics = diagnosticsFor(sites, estimates, this.caps, config);
    await this.connection.sendDiagnostics({ uri: document.uri, version, diagnostics });
  }

  /** Still open, at this version (an edit updates the same object; a reopen makes a new one). */
  private isCurrent(document: TextDocument, version: number): boolean {
    return this.documents.get(document.uri) === document && document.version === version;
  }

  /**
   * Lenses and warnings of every open document are recomputed, at most every quarter second: a
   * busy caller settles many calls a second, and each would otherwise refresh every editor.
   */
  private refresh(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      if (this.options.refreshSupported) void this.connection.sendRequest(CodeLensRefreshRequest.type);
      for (const document of this.documents.all()) void this.publishDiagnostics(document);
    }, 250);
  }
}
