// The I/O loop of a Postgres session: parse both directions with the codec,
// hand messages to the client-side / server-side handlers, write the results
// batched (one write per incoming chunk) and propagate backpressure both ways.
// Client messages are handled strictly in order, one at a time, because a
// statement may wait for its record to be written before it is forwarded.
import type { Duplex } from "node:stream";
import { AirlockError, type RelayResult } from "@airlock/shared";
import { PgProtocolError, errorResponseFor, writeBackend, type BackendReader, type FrontendMessage, type FrontendReader } from "../protocol/index.js";
import { handleClient } from "./client-side.js";
import { handleServer, TargetProtocolError } from "./server-side.js";
import type { SessionState } from "./state.js";

export interface RelayOptions {
  client: Duplex;
  server: Duplex;
  clientReader: FrontendReader;
  serverReader: BackendReader;
  state: SessionState;
}

/** Client messages held while earlier ones wait; beyond this the client socket is paused. */
const INBOX_HIGH = 1024;

export function runRelay(o: RelayOptions): Promise<RelayResult> {
  const { client, server, state } = o;
  const result: RelayResult = { bytesUp: 0, bytesDown: 0 };
  const inbox: Array<[FrontendMessage, Buffer]> = [];
  let toServer: Buffer[] = [];
  let pumping = false;
  let serverBlocked = false;
  let done = false;

  return new Promise<RelayResult>((resolve) => {
    const finish = (err?: AirlockError) => {
      if (done) return;
      done = true;
      state.closed.abort();
      if (err && !result.error) result.error = err;
      client.off("data", onClientData);
      server.off("data", onServerData);
      if (!server.destroyed) server.destroy();
      resolve(result);
    };

    const failClient = (err: PgProtocolError | Error) => {
      // A client that breaks the protocol gets a FATAL in its own protocol, then we close.
      const pe = err instanceof PgProtocolError ? err : null;
      const frame = pe ? writeBackend(errorResponseFor(pe)) : writeBackend(errorResponseFor(new PgProtocolError("UNEXPECTED_MESSAGE", "08P01", err.message)));
      client.end(frame);
      finish(new AirlockError("CLIENT_PROTOCOL_ERROR", err.message, { cause: err }));
    };

    const flushServer = () => {
      if (toServer.length === 0) return;
      const buf = toServer.length === 1 ? toServer[0]! : Buffer.concat(toServer);
      toServer = [];
      result.bytesUp += buf.length;
      if (!server.write(buf)) serverBlocked = true;
    };
    const io = { toServer: (b: Buffer) => void toServer.push(b), flush: flushServer, toClient: (b: Buffer) => void (client.writable && client.write(b)) };

    const pump = async () => {
      if (pumping) return;
      pumping = true;
      try {
        while (inbox.length > 0 && !done && !serverBlocked) {
          const [m, raw] = inbox.shift()!;
          const wait = handleClient(state, m, raw, io);
          if (wait) await wait;
          if (m.type === "Terminate") {
            flushServer();
            server.end();
            client.end();
            return finish();
          }
        }
        flushServer();
      } catch (err) {
        if (err instanceof AirlockError) {
          // Recording failed: fail closed. The statement did not run; tell the client why.
          client.end(writeBackend(errorResponseFor(new PgProtocolError("UNEXPECTED_MESSAGE", "58000", `airlock: ${err.message}`))));
          return finish(err);
        }
        return failClient(err as Error);
      } finally {
        pumping = false;
      }
      if (inbox.length < INBOX_HIGH / 2 && client.isPaused()) client.resume();
      if (inbox.length > 0 && !serverBlocked && !done) void pump();
    };

    const onClientData = (chunk: Buffer) => {
      try {
        o.clientReader.feed(chunk, (m, raw) => inbox.push([m, raw]));
      } catch (err) {
        // Messages before the bad one still run; then the session ends.
        void pump().then(() => failClient(err as Error));
        return;
      }
      if (inbox.length > INBOX_HIGH) client.pause();
      void pump();
    };

    const onServerData = (chunk: Buffer) => {
      result.bytesDown += chunk.length;
      const out: Buffer[] = [];
      try {
        o.serverReader.feed(chunk, (m, raw) => handleServer(state, m, raw, (b) => void out.push(b)));
      } catch (err) {
        if (out.length) client.write(Buffer.concat(out));
        const msg = err instanceof TargetProtocolError || err instanceof PgProtocolError ? err.message : String(err);
        const e = new AirlockError("TARGET_PROTOCOL_ERROR", `target: ${msg}`, { cause: err });
        client.end(writeBackend(errorResponseFor(new PgProtocolError("UNEXPECTED_MESSAGE", "08P01", `airlock: the target broke the protocol (${msg})`))));
        return finish(e);
      }
      if (out.length === 0) return;
      const ok = client.write(out.length === 1 ? out[0]! : Buffer.concat(out));
      if (!ok) server.pause();
    };

    client.on("data", onClientData);
    server.on("data", onServerData);
    client.on("drain", () => server.resume());
    server.on("drain", () => {
      serverBlocked = false;
      void pump();
    });
    client.on("end", () => {
      // Client closed without Terminate: let the server know and end.
      server.end();
      finish();
    });
    server.on("end", () => {
      client.end();
      finish();
    });
    client.on("error", (err) => finish(new AirlockError("STREAM_RESET", `client: ${err.message}`, { cause: err })));
    server.on("error", (err) => {
      const e = AirlockError.from(err, "STREAM_RESET");
      if (!client.destroyed) client.end(writeBackend(errorResponseFor(new PgProtocolError("UNEXPECTED_MESSAGE", "08006", `airlock: connection to the target lost: ${e.message}`))));
      finish(e);
    });
    // The readers may already hold bytes that arrived with the last startup message
    // (e.g. a NoticeResponse or ReadyForQuery sent right after the target's first one):
    // handle them now rather than when the next chunk happens to arrive.
    onServerData(Buffer.alloc(0));
    onClientData(Buffer.alloc(0));
    client.resume();
    server.resume();
  });
}
