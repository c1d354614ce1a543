// Reading a recording back, as the lines of GET /api/v1/sessions/:id/recording
// (NDJSON, one JSON object per line, in recorded order):
//
//   {"t": 1520, "dir": "down", "data": "<base64>"}    a frame: ms since the recording
//                                                     started, direction (up = client→target,
//                                                     down = target→client), the bytes
//   {"gap": {"fromIdx": 4, "toIdx": 6, "reason": "…"}}  chunks 4–6 are not in the store
//                                                     (lost or removed; audit tombstones say why)
//   {"error": {"code": "…", "message": "…"}}          the recording cannot be read further
//                                                     (a chunk is missing from its backend or
//                                                     fails its digest); always the last line
//   {"end": {"chunks": 12, "frames": 3400, "bytes": 781234, "gaps": 0}}
//                                                     everything was read; always the last line
//
// A reader that sees neither "end" nor "error" last got a cut stream.
// Memory: one chunk at a time (chunks.ts readChunk), lines pulled by the HTTP response.
import { AirlockError } from "@airlock/shared";
import type { Store } from "../store/index.js";
import { listChunks, readChunk } from "./chunks.js";
import { DIR_DOWN, DIR_UP, FrameDecoder } from "./frames.js";
import type { Recordings } from "./service.js";

export type ReplayDirection = "up" | "down" | "both";

export type ReplayLine =
  | { t: number; dir: "up" | "down"; data: string }
  | { gap: { fromIdx: number; toIdx: number; reason: string } }
  | { error: { code: string; message: string } }
  | { end: { chunks: number; frames: number; bytes: number; gaps: number } };

export async function* readRecording(store: Store, recordings: Recordings, sessionId: string, direction: ReplayDirection = "both"): AsyncGenerator<ReplayLine> {
  const want = (dir: number) => direction === "both" || (direction === "up" ? dir === DIR_UP : dir === DIR_DOWN);
  const totals = { chunks: 0, frames: 0, bytes: 0, gaps: 0 };
  let expect = 1;
  try {
    for await (const c of listChunks(store, sessionId)) {
      if (c.idx > expect) {
        totals.gaps++;
        yield { gap: { fromIdx: expect, toIdx: c.idx - 1, reason: "not in the store (lost when it could not be written, or removed by retention; see the session's audit tombstones)" } };
      }
      expect = c.idx + 1;
      const raw = await readChunk(recordings.backend(c.storage), c);
      const decoder = new FrameDecoder();
      const frames = decoder.push(raw);
      decoder.end();
      totals.chunks++;
      for (const f of frames) {
        if (!want(f.dir)) continue;
        totals.frames++;
        totals.bytes += f.data.length;
        yield { t: f.t, dir: f.dir === DIR_UP ? "up" : "down", data: f.data.toString("base64") };
      }
    }
  } catch (err) {
    // Anything not already explained is the store or a backend failing to read.
    const e = AirlockError.from(err, "STORE_UNAVAILABLE");
    yield { error: { code: e.code, message: e.message } };
    return;
  }
  yield { end: totals };
}
