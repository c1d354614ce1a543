// PostgreSQL protocol v3 codec without I/O: framing/decoding (reader) and encoding (writer) for
// both directions. Design notes (buffering, limits, failure) head reader.ts; shape conventions head types.ts.
export * from "./constants.js";
export * from "./errors.js";
export type * from "./types.js";
export { FrontendReader, BackendReader, type FrontendPhase, type ReaderOptions } from "./reader.js";
export { writeFrontend, writeBackend } from "./writer.js";
export { decodeAuthResponse } from "./decode-frontend.js";
