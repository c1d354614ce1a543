// The relay of @airlock/shared (relay.ts) with a recording tap in each
// direction: client → tap(up) → upstream and upstream → tap(down) → client.
// Same contract: backpressure through pipe, half-close carried across (a
// tap ends when its source ends and ends its destination), the first failure
// on either side tears the other down with the reason, and the promise
// settles once both sides are closed.
//
// Each tap records a piece before passing it on, and holds it back while the
// recording has too much unstored (StreamRecording.hasRoom), which stops the
// pipe and so the source: the store's pace bounds the session's, never memory.
import { finished, Transform, type Duplex, type TransformCallback } from "node:stream";
import { AirlockError, type RelayResult } from "@airlock/shared";
import { DIR_DOWN, DIR_UP, type Direction } from "./frames.js";
import type { StreamRecording } from "./recorder.js";

class Tap extends Transform {
  constructor(
    private readonly rec: StreamRecording,
    private readonly dir: Direction,
    private readonly count: (n: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    // Nothing more is recorded or relayed once the recording failed for good.
    if (this.rec.failure) return cb(this.rec.failure);
    this.count(chunk.length);
    this.rec.record(this.dir, chunk);
    if (this.rec.hasRoom()) return this.pass(chunk, cb);
    void this.rec.whenRoom().then(() => this.pass(chunk, cb));
  }

  private pass(chunk: Buffer, cb: TransformCallback): void {
    // A closed-mode recording that failed lets nothing more through.
    if (this.rec.failure) cb(this.rec.failure);
    else cb(null, chunk);
  }
}

export function relayRecorded(client: Duplex, upstream: Duplex, rec: StreamRecording): Promise<RelayResult> {
  return new Promise((resolve) => {
    const result: RelayResult = { bytesUp: 0, bytesDown: 0 };
    const up = new Tap(rec, DIR_UP, (n) => (result.bytesUp += n));
    const down = new Tap(rec, DIR_DOWN, (n) => (result.bytesDown += n));
    const all = [client, upstream, up, down];
    const fail = (err: Error, side: string) => {
      if (!result.error) {
        result.error = err instanceof AirlockError ? err : new AirlockError("STREAM_RESET", `${side}: ${err.message}`, { cause: err });
      }
      for (const s of all) if (!s.destroyed) s.destroy(result.error);
    };
    // The store can fail while nothing flows (a flush on the timer): end the session then too.
    rec.onFailure = (err) => fail(err, "recording");
    client.pipe(up).pipe(upstream);
    upstream.pipe(down).pipe(client);
    // `finished` reports errors and premature closes, which plain 'error' listeners would miss.
    finished(client, (err) => err && fail(err, "client"));
    finished(upstream, (err) => err && fail(err, "upstream"));
    for (const tap of [up, down]) {
      finished(tap, (err) => {
        // A tap destroyed by the teardown above reports a premature close: not a new failure.
        if (err && !result.error) fail(err, "recording");
      });
    }
    let open = 2;
    const onClose = () => {
      if (--open === 0) resolve(result);
    };
    client.once("close", onClose);
    upstream.once("close", onClose);
  });
}
