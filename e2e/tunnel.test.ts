// The agent link in-process, over real gRPC on loopback: gateway TunnelServer
// and the real Agent, relaying to a real TCP echo server. Bad agents are
// raw gRPC clients sending crafted or garbage frames.
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "@airlock/agent";
import { AgentFrameSchema, create, decodeGatewayFrame, encodeAgentFrame, LINK_PATH, type GatewayFrame } from "@airlock/proto";
import { AirlockError, silentLogger } from "@airlock/shared";
import { AgentRegistry, TunnelServer, type AgentIdentity } from "@airlock/gateway/tunnel/index";
import { loadOrCreateGatewayTls } from "@airlock/gateway/crypto/index";
import tls from "node:tls";

let echo: net.Server;
let echoPort: number;
let server: TunnelServer;
let registry: AgentRegistry;
let agent: Agent;
const issued = new Map<string, AgentIdentity>();

beforeAll(async () => {
  echo = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  echoPort = (echo.address() as net.AddressInfo).port;
  registry = new AgentRegistry();
  server = new TunnelServer({
    listen: "127.0.0.1:0",
    tls: null,
    registry,
    logger: silentLogger,
    helloTimeoutMs: 1_000,
    authenticate: async (hello) => {
      const c = hello.credential;
      if (c.case === "enrollmentToken" && c.value === "alk_enr_good") {
        const id = { agentId: "a1", agentName: "edge-1", group: null };
        issued.set("alk_ak_issued", id);
        return { ...id, issuedKey: "alk_ak_issued" };
      }
      if (c.case === "agentKey" && issued.has(c.value)) return issued.get(c.value)!;
      throw new AirlockError("AGENT_KEY_INVALID");
    },
  });
  const port = await server.start();
  agent = new Agent({
    gateway: `127.0.0.1:${port}`,
    token: "alk_enr_good",
    dataDir: await mkdtemp(join(tmpdir(), "airlock-agent-")),
    insecure: true,
    logger: silentLogger,
  });
  await agent.start();
  await agent.waitReady();
});

afterAll(async () => {
  await agent?.stop();
  await server?.stop();
  echo?.close();
});

function open() {
  const link = registry.pick({ agentId: "a1" });
  if (!link) throw new Error("agent not online");
  return link.open({ host: "127.0.0.1", port: echoPort, sessionId: "s", connectionName: "echo" });
}

function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("end", () => resolve(Buffer.concat(chunks)));
    s.on("error", reject);
  });
}

/** A gRPC peer that speaks the link method with whatever bytes we give it. */
function rawLink(port: number) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(LINK_PATH, (b: Buffer) => b, decodeGatewayFrame);
  const frames: GatewayFrame[] = [];
  const ended = new Promise<void>((resolve) => {
    call.on("data", (f: GatewayFrame) => frames.push(f));
    call.on("error", () => resolve());
    call.on("end", () => resolve());
  });
  return { call, frames, ended, close: () => client.close() };
}

const errorOf = (frames: GatewayFrame[]) => frames.map((f) => f.frame).find((f) => f.case === "error")?.value;

describe("agent tunnel", () => {
  it("enrolls once and stores the issued key", () => {
    expect(agent.state?.agentKey).toBe("alk_ak_issued");
    expect(registry.list()).toMatchObject([{ agentName: "edge-1", streams: 0 }]);
  });

  it("relays bytes to the target and back, honouring half-close", async () => {
    const s = await open();
    const payload = randomBytes(8 * 1024 * 1024);
    const back = collect(s);
    s.end(payload);
    expect((await back).equals(payload)).toBe(true);
  });

  it("carries many concurrent streams", async () => {
    const streams = await Promise.all(Array.from({ length: 32 }, () => open()));
    const results = await Promise.all(
      streams.map(async (s, i) => {
        const p = Buffer.alloc(256 * 1024, i);
        const back = collect(s);
        s.end(p);
        return (await back).equals(p);
      }),
    );
    expect(results.every(Boolean)).toBe(true);
  });

  it("reports an unreachable target as STREAM_REFUSED", async () => {
    const link = registry.pick({ agentId: "a1" })!;
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    await expect(link.open({ host: "127.0.0.1", port, sessionId: "s", connectionName: "x" })).rejects.toMatchObject({
      code: "STREAM_REFUSED",
      message: expect.stringContaining("ECONNREFUSED"),
    });
  });

  it("dials a TLS target, verifying it against the connection's CA; a wrong CA is refused", async () => {
    const target = await loadOrCreateGatewayTls({ dataDir: await mkdtemp(join(tmpdir(), "airlock-target-")) });
    const other = await loadOrCreateGatewayTls({ dataDir: await mkdtemp(join(tmpdir(), "airlock-other-")) });
    const server = tls.createServer({ cert: target.certPem, key: target.keyPem }, (s) => s.pipe(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const link = registry.pick({ agentId: "a1" })!;
    const s = await link.open({ host: "127.0.0.1", port, sessionId: "s", connectionName: "tls", tls: { enabled: true, verify: true, serverName: "localhost", caPem: target.caPem } });
    const back = collect(s);
    s.end("over tls");
    expect((await back).toString()).toBe("over tls");
    await expect(
      link.open({ host: "127.0.0.1", port, sessionId: "s", connectionName: "tls", tls: { enabled: true, verify: true, serverName: "localhost", caPem: other.caPem } }),
    ).rejects.toMatchObject({ code: "STREAM_REFUSED", message: expect.stringMatching(/certificate|verify/i) });
    server.close();
  });

  describe("bad agents are dropped with a clear error while other streams keep flowing", () => {
    async function whileStreaming(attack: () => Promise<void>) {
      const s = await open();
      const payload = randomBytes(4 * 1024 * 1024);
      const back = collect(s);
      s.write(payload.subarray(0, 1024 * 1024));
      await attack();
      s.end(payload.subarray(1024 * 1024));
      expect((await back).equals(payload)).toBe(true);
    }

    it("garbage bytes", async () => {
      await whileStreaming(async () => {
        const raw = rawLink(server.port);
        raw.call.write(randomBytes(300));
        await raw.ended;
        raw.close();
      });
    });

    it("an oversize frame", async () => {
      await whileStreaming(async () => {
        const raw = rawLink(server.port);
        raw.call.write(Buffer.alloc(2 * 1024 * 1024, 7));
        await raw.ended;
        raw.close();
      });
    });

    it("a frame before Hello", async () => {
      await whileStreaming(async () => {
        const raw = rawLink(server.port);
        raw.call.write(encodeAgentFrame(create(AgentFrameSchema, { frame: { case: "data", value: { streamId: 1, payload: new Uint8Array(4) } } })));
        await raw.ended;
        expect(errorOf(raw.frames)).toMatchObject({ code: "LINK_PROTOCOL_ERROR", message: "expected Hello, got data" });
        raw.close();
      });
    });

    it("an unknown agent key, and an unsupported protocol version", async () => {
      await whileStreaming(async () => {
        const bad = rawLink(server.port);
        bad.call.write(encodeAgentFrame(create(AgentFrameSchema, { frame: { case: "hello", value: { protocolVersion: 1, credential: { case: "agentKey", value: "alk_ak_nope" } } } })));
        await bad.ended;
        expect(errorOf(bad.frames)?.code).toBe("AGENT_KEY_INVALID");
        bad.close();
        const old = rawLink(server.port);
        old.call.write(encodeAgentFrame(create(AgentFrameSchema, { frame: { case: "hello", value: { protocolVersion: 99, agentVersion: "9.9.9" } } })));
        await old.ended;
        expect(errorOf(old.frames)?.code).toBe("AGENT_VERSION_UNSUPPORTED");
        expect(errorOf(old.frames)?.message).toMatch(/protocol v99.*speaks v1/);
        old.close();
      });
    });

    it("data for a stream that was never opened", async () => {
      await whileStreaming(async () => {
        const raw = rawLink(server.port);
        raw.call.write(encodeAgentFrame(create(AgentFrameSchema, { frame: { case: "hello", value: { protocolVersion: 1, credential: { case: "agentKey", value: "alk_ak_issued" } } } })));
        await new Promise((r) => setTimeout(r, 100));
        raw.call.write(encodeAgentFrame(create(AgentFrameSchema, { frame: { case: "data", value: { streamId: 4242, payload: new Uint8Array(10) } } })));
        await raw.ended;
        expect(errorOf(raw.frames)).toMatchObject({ code: "LINK_PROTOCOL_ERROR" });
        raw.close();
      });
    });

    it("a client that never sends Hello is dropped after the handshake timeout", async () => {
      const raw = rawLink(server.port);
      const started = Date.now();
      await raw.ended;
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(errorOf(raw.frames)?.message).toMatch(/no Hello/);
      raw.close();
      expect(registry.list().length).toBe(1);
    });
  });
});
