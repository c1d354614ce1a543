export * from "./agent.js";
export * from "./backoff.js";
export * from "./cli.js";
export * from "./link.js";
export * from "./state.js";
