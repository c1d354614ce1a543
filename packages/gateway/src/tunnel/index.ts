export * from "./link.js";
export * from "./registry.js";
export * from "./server.js";
