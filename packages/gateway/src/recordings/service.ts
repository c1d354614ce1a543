// The gateway's byte recordings: which backend new chunks go to (config
// audit.recordings.storage: db, fs or none), every backend a stored chunk may
// name (so recordings written under an earlier configuration stay readable),
// the recording of live stream sessions, and reading a recording back.
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { AirlockError, relay, type Logger, type RelayResult } from "@airlock/shared";
import type { AuditChains } from "../audit/chains.js";
import type { AuditConfig } from "../audit/config.js";
import type { SessionContext } from "../engines/engine.js";
import type { SessionEnd } from "../sessions/recorder.js";
import type { Store } from "../store/index.js";
import { insertChunk } from "./chunks.js";
import { StreamRecording } from "./recorder.js";
import { relayRecorded } from "./relay.js";
import { DbStorage, type RecordingStorage, type StorageKind } from "./storage.js";
import { FsStorage } from "./storage-fs.js";

export interface RecordingsOptions {
  store: Store;
  chains: AuditChains | null;
  config: AuditConfig["recordings"];
  /** Default parent of the fs backend's directory (<dataDir>/recordings). */
  dataDir: string;
  log: Logger;
  /** Extra or replacement backends (an S3-compatible store; tests' failing storage). */
  backends?: RecordingStorage[];
}

/** A relay's result with the recording's totals, which SessionRecorder.finish stores. */
export type RecordedResult = RelayResult & { recording?: SessionEnd["recording"] };

export class Recordings {
  private readonly backends = new Map<StorageKind, RecordingStorage>();
  /** Where new chunks go; null when recording is off (storage none). */
  readonly writer: RecordingStorage | null;

  constructor(private readonly o: RecordingsOptions) {
    this.backends.set("db", new DbStorage(o.store));
    this.backends.set("fs", new FsStorage(o.config.dir ?? join(o.dataDir, "recordings")));
    for (const b of o.backends ?? []) this.backends.set(b.kind, b);
    // auto: db on the PostgreSQL store, fs on the embedded one (see audit/config.ts).
    const kind = o.config.storage === "auto" ? (o.store.kind === "postgres" ? "db" : "fs") : o.config.storage;
    this.writer = kind === "none" ? null : this.backends.get(kind)!;
  }

  /** The backend a stored chunk names. */
  backend(kind: string): RecordingStorage {
    const b = this.backends.get(kind as StorageKind);
    if (!b) throw new AirlockError("CONFIG_INVALID", `recording chunks are in storage "${kind}", which this gateway has no backend for`);
    return b;
  }

  /** Starts recording a stream session; null when recording is off. */
  begin(ctx: Pick<SessionContext, "sessionId" | "connection" | "log">): StreamRecording | null {
    if (!this.writer) return null;
    const store = this.o.store;
    return new StreamRecording({
      sessionId: ctx.sessionId,
      recordMode: ctx.connection.recordMode,
      storage: this.writer,
      writeRow: (row) => insertChunk(store, row),
      chains: this.o.chains,
      chunkBytes: this.o.config.chunkBytes,
      flushMs: this.o.config.flushMs,
      log: ctx.log,
    });
  }

  /**
   * Relays a stream session, recording both directions when recording is on.
   * The result carries the recording totals (`recording`): runSession hands the
   * whole result to SessionRecorder.finish, which stores them with the session.
   */
  async relay(client: Duplex, upstream: Duplex, ctx: Pick<SessionContext, "sessionId" | "connection" | "log">): Promise<RecordedResult> {
    const rec = this.begin(ctx);
    if (!rec) return relay(client, upstream);
    const result = await relayRecorded(client, upstream, rec);
    const summary = await rec.finish();
    if (summary.lost) ctx.log.warn({ lost: summary.lost, stored: summary.chunks }, "recording chunks were lost");
    return {
      ...result,
      // A closed-mode failure on the last chunk still fails the session, even though its bytes went through.
      error: result.error ?? summary.error ?? undefined,
      recording: { chunks: summary.chunks, bytes: summary.bytes, storage: summary.storage },
    };
  }
}
