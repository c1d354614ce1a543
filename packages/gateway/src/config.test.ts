import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";

describe("loadConfig", () => {
  it("applies defaults, then env, then overrides", () => {
    const cfg = loadConfig({ api: { port: 9999 } }, { AIRLOCK_DATA_DIR: "/var/lib/airlock", AIRLOCK_API_LISTEN: "127.0.0.1:7000", AIRLOCK_TLS_NAMES: "gw.example.com, 10.0.0.5" });
    expect(cfg.dataDir).toBe("/var/lib/airlock");
    expect(cfg.api).toMatchObject({ host: "127.0.0.1", port: 9999 });
    expect(cfg.agents).toMatchObject({ host: "0.0.0.0", port: 8443, tlsNames: ["gw.example.com", "10.0.0.5"], insecure: false });
    expect(cfg.tokens.defaultTtlSeconds).toBe(3600);
  });

  it("parses IPv6 listen addresses", () => {
    expect(loadConfig({}, { AIRLOCK_AGENT_LISTEN: "[::1]:9443" }).agents).toMatchObject({ host: "::1", port: 9443 });
  });

  it("reports every problem at once with its path", () => {
    let msg = "";
    try {
      loadConfig({}, { AIRLOCK_API_LISTEN: "x:99999", AIRLOCK_DATABASE_URL: "mysql://nope", AIRLOCK_TOKEN_TTL_SECONDS: "5" });
    } catch (err) {
      msg = (err as Error).message;
      expect((err as { code: string }).code).toBe("CONFIG_INVALID");
    }
    expect(msg).toMatch(/\/api\/port/);
    expect(msg).toMatch(/\/databaseUrl/);
    expect(msg).toMatch(/\/tokens\/defaultTtlSeconds/);
  });

  it("rejects a keepalive timeout not above the interval", () => {
    expect(() => loadConfig({ tunnel: { keepaliveIntervalMs: 1000, keepaliveTimeoutMs: 1000 } }, {})).toThrow(/keepaliveTimeoutMs/);
  });
});
