// WsByteStream over a real WebSocket on loopback: half-close, error reporting
// and bounded buffering when the peer stops reading.
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { AirlockError } from "./errors.js";
import { relay } from "./relay.js";
import { WS_SUBPROTOCOL, WsByteStream } from "./ws-stream.js";

let wss: WebSocketServer | null = null;
afterEach(() => wss?.close());

async function pair(): Promise<[WsByteStream, WsByteStream, WebSocket]> {
  wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise((r) => wss!.once("listening", r));
  const accepted = new Promise<WebSocket>((r) => wss!.once("connection", r));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, WS_SUBPROTOCOL);
  await new Promise((r) => client.once("open", r));
  const server = await accepted;
  return [new WsByteStream(client), new WsByteStream(server), client];
}

function collect(s: WsByteStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("end", () => resolve(Buffer.concat(chunks)));
    s.once("error", reject);
  });
}

describe("WsByteStream", () => {
  it("carries bytes and half-close each way", async () => {
    const [a, b] = await pair();
    const up = randomBytes(3 * 1024 * 1024);
    const gotUp = collect(b);
    a.end(up);
    expect((await gotUp).equals(up)).toBe(true);
    // b can still answer after a's eof, like a TCP half-close.
    const gotDown = collect(a);
    b.end(Buffer.from("bye"));
    expect((await gotDown).toString()).toBe("bye");
  });

  it("reports a failure to the peer with its code", async () => {
    const [a, b] = await pair();
    const failed = new Promise<AirlockError>((r) => a.once("error", r));
    b.on("error", () => {});
    b.fail(new AirlockError("AGENT_UNAVAILABLE", "no agent is online for connection x"));
    const err = await failed;
    expect(err.code).toBe("AGENT_UNAVAILABLE");
    expect(err.message).toContain("connection x");
  });

  it("stops taking writes when the peer does not read, instead of buffering", async () => {
    const [a, b, clientWs] = await pair();
    // The client side stops reading from its socket entirely.
    (clientWs as unknown as { _socket: { pause(): void } })._socket.pause();
    const chunk = Buffer.alloc(64 * 1024, 1);
    let accepted = 0;
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (b.write(chunk)) accepted += chunk.length;
        accepted += chunk.length;
        setTimeout(resolve, 500); // no 'drain' is coming while the peer is paused
      };
      pump();
    });
    // Bounded by socket buffers plus our high-water marks, far below what we tried to send.
    expect(accepted).toBeLessThan(64 * 1024 * 1024);
    expect(b.stalledForMs).toBeGreaterThan(300);
    a.destroy();
    b.destroy();
  });

  it("relay tears the other side down when one side fails", async () => {
    const [a, b] = await pair();
    const [c, d] = await pair();
    const done = relay(b, c);
    d.on("error", () => {});
    a.on("error", () => {});
    d.fail(new AirlockError("LINK_LOST", "agent went away"));
    const r = await done;
    expect(r.error?.code).toBe("LINK_LOST");
    expect(b.destroyed && c.destroyed).toBe(true);
  });
});
