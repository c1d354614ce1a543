// Event plumbing shared by the startup phases: read messages from a stream until a handler says
// "done", then hand the stream back untouched. The reader keeps whatever arrived after the last
// handled message, so the next owner loses no byte.
import type { Duplex } from "node:stream";
import { AirlockError } from "@airlock/shared/errors";
import { PgProtocolError } from "../protocol/errors.js";
import type { BackendMessage } from "../protocol/types.js";
import type { BackendReader } from "../protocol/reader.js";

const EMPTY = Buffer.alloc(0);
/** Thrown from the reader's callback to stop decoding: the reader keeps the remaining bytes queued. */
const STOP: unique symbol = Symbol("stop");

/**
 * Feeds `stream` into `reader` and calls `onMessage` for each message until it returns true (the
 * message that ends the phase). A handler that throws fails the phase with that error. On settling,
 * every listener added here is removed and the stream is paused, so later bytes wait in the stream
 * (not dropped) and nothing of ours reacts to them.
 */
export function readUntil(
  stream: Duplex,
  reader: BackendReader,
  onMessage: (message: BackendMessage) => boolean,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      stream.off("data", onData);
      stream.off("error", onError);
      stream.off("end", onEnd);
      stream.off("close", onEnd);
      stream.pause();
      if (err === undefined) resolve();
      else reject(err);
    };
    const onData = (chunk: Buffer): void => {
      if (settled) return;
      try {
        reader.feed(chunk, (message) => {
          if (onMessage(message)) throw STOP;
        });
      } catch (err) {
        settle(err === STOP ? undefined : asTargetError(err));
      }
    };
    const onError = (err: Error): void => {
      settle(new AirlockError("TARGET_PROTOCOL_ERROR", `connection to the target failed: ${err.message}`, { cause: err }));
    };
    const onEnd = (): void => {
      settle(new AirlockError("TARGET_PROTOCOL_ERROR", "the target closed the connection during startup"));
    };
    if (stream.destroyed || !stream.readable) {
      settle(new AirlockError("TARGET_PROTOCOL_ERROR", "the stream to the target is already closed"));
      return;
    }
    stream.on("data", onData);
    stream.on("error", onError);
    stream.on("end", onEnd);
    stream.on("close", onEnd);
    // Messages left in the reader by the previous phase come first.
    onData(EMPTY);
    // A 'data' listener does not restart a stream that was explicitly paused (the previous phase did).
    if (!settled) stream.resume();
  });
}

/** Reader failures (bad framing) and encoder failures become catalogue errors; ours pass through. */
export function asTargetError(err: unknown): AirlockError {
  if (err instanceof AirlockError) return err;
  if (err instanceof PgProtocolError) {
    return new AirlockError("TARGET_PROTOCOL_ERROR", `target protocol error: ${err.message}`, { cause: err });
  }
  return AirlockError.from(err, "TARGET_PROTOCOL_ERROR");
}

/**
 * Runs `work` with a deadline. On expiry `onTimeout` runs (it should destroy the streams, which makes
 * `work` fail; that later failure is ignored) and the promise rejects with `timeoutError`.
 */
export async function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  timeoutError: () => AirlockError,
  onTimeout: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(timeoutError());
    }, ms);
  });
  work.catch(() => undefined); // its failure after the deadline must not become an unhandled rejection
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
