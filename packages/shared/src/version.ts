/** Airlock release version, shared by gateway, agent and CLI. */
export const AIRLOCK_VERSION = "0.1.0";
