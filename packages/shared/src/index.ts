export * from "./errors.js";
export * from "./logger.js";
export * from "./version.js";
export * from "./mux/index.js";
export * from "./relay.js";
export * from "./ws-stream.js";
export * from "./shutdown.js";
