export * from "./frames.js";
export * from "./mux.js";
export * from "./stream.js";
