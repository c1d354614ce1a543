// The gateway's crypto module: bearer tokens, envelope encryption of secrets
// at rest, and the TLS material for the agent port. See docs/architecture.md.
export * from "./tokens.js";
export * from "./envelope.js";
export * from "./master-key.js";
export * from "./tls.js";
export { desiredSanNames, type PemPair, type SanNames } from "./tls-gen.js";
