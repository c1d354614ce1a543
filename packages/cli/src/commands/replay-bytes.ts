// Plays a byte recording (GET /api/v1/sessions/:id/recording, NDJSON; see
// docs/recordings.md) to a writable: each frame's bytes are written when its
// recorded time, divided by the speed, has passed since playback started
// (speed 0: no waiting). The response is read as fast as playback consumes
// it, so memory stays at one line however long the recording is.
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError, textLines, type ApiClient } from "../client.js";

export type ReplayLine =
  | { t: number; dir: "up" | "down"; data: string }
  | { gap: { fromIdx: number; toIdx: number; reason: string } }
  | { error: { code: string; message: string } }
  | { end: { chunks: number; frames: number; bytes: number; gaps: number } };

export interface PlayOptions {
  api: ApiClient;
  sessionId: string;
  direction: "up" | "down" | "both";
  /** 1 = as recorded, 2 = twice as fast, 0 = no delays. */
  speed: number;
  out: NodeJS.WritableStream;
  /** Gaps and notes (stderr). */
  note: (msg: string) => void;
  /** Print the NDJSON lines as they come instead of the bytes (no pacing). */
  raw?: boolean;
}

async function write(out: NodeJS.WritableStream, data: Buffer | string): Promise<void> {
  if (!out.write(data)) await once(out, "drain");
}

/** Plays the recording; resolves with its end totals, throws when it could not be played to the end. */
export async function playRecording(o: PlayOptions): Promise<{ chunks: number; frames: number; bytes: number; gaps: number }> {
  const res = await o.api.stream(`/api/v1/sessions/${encodeURIComponent(o.sessionId)}/recording?direction=${o.direction}`);
  const started = performance.now();
  for await (const text of textLines(res)) {
    const line = JSON.parse(text) as ReplayLine;
    if (o.raw) await write(o.out, `${text}\n`);
    if ("t" in line) {
      if (o.raw) continue;
      if (o.speed > 0) {
        const wait = started + line.t / o.speed - performance.now();
        if (wait > 0) await sleep(wait);
      }
      await write(o.out, Buffer.from(line.data, "base64"));
    } else if ("gap" in line) {
      o.note(`recording chunks ${line.gap.fromIdx}–${line.gap.toIdx} are missing: ${line.gap.reason}`);
    } else if ("error" in line) {
      throw new ApiError(500, line.error.code, `the recording could not be read to its end: ${line.error.message}`);
    } else if ("end" in line) {
      return line.end;
    }
  }
  throw new ApiError(0, "STREAM_RESET", "the recording stream was cut before its end");
}
