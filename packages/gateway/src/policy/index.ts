// Policy-as-code engine (Cedar). See README.md for the entity model.
export { PolicyEngine, type ReloadResult } from "./engine.js";
export { loadPolicyDir, type LoadedPolicies } from "./loader.js";
export { runPolicyTests, type PolicyTestCase, type PolicyTestReport, type PolicyTestResult } from "./testing.js";
export { SCHEMA_TEXT } from "./schema.js";
export * from "./types.js";
