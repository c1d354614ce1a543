export * from "./config.js";
export * from "./server.js";
export { AgentRegistry, TunnelServer } from "./tunnel/index.js";
export type { Principal, Role } from "./auth/principal.js";
export type { ConnectionInput, ConnectionView } from "./connections/service.js";
export * from "./run.js";
