export * from "./client.js";
export * from "./profile.js";
export * from "./tunnel-client.js";
