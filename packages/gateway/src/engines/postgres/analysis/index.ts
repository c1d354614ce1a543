/** Postgres statement analysis: SQL text -> per-statement facts for guardrails. */
export { analyze, analyzeSync, initAnalyzer, clearAnalyzerCache, analyzerCacheSize, CACHE_MAX_ENTRIES, CACHE_MAX_TEXT } from "./analyzer.js";
export { SqlAnalysisError } from "./types.js";
export type { StatementFacts, StatementKind, QualifiedName, RiskFlag } from "./types.js";
