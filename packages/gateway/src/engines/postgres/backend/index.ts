// The gateway as a client of the target PostgreSQL: TLS, login with stored credentials
// (credential brokering), cancel requests. Uses the pure codec in ../protocol.
export { connectTarget, cancelOnTarget, DEFAULT_STARTUP_TIMEOUT_MS, CANCEL_TIMEOUT_MS } from "./connect.js";
export type { TargetConnection, TargetLogin, TargetTlsOptions } from "./connect.js";
export { ScramClient, MAX_SCRAM_ITERATIONS } from "./scram.js";
export { md5Password } from "./md5.js";
export { saslPrep } from "./saslprep.js";
export { startupError } from "./startup.js";
