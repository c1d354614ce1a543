import { finished, type Duplex } from "node:stream";
import { AirlockError } from "./errors.js";

export interface RelayResult {
  /** Bytes from the client towards the target. */
  bytesUp: number;
  /** Bytes from the target towards the client. */
  bytesDown: number;
  /** The first failure on either side; undefined when both ends closed cleanly. */
  error?: AirlockError;
}

/**
 * Copies bytes both ways between a client and an upstream with backpressure
 * (pipe) and half-close (a side's end becomes the other's end). A failure on
 * one side tears the other down with the reason; the promise settles once both
 * sides are closed, so callers can record the outcome exactly once.
 */
export function relay(client: Duplex, upstream: Duplex, onBytes?: (up: number, down: number) => void): Promise<RelayResult> {
  return new Promise((resolve) => {
    const result: RelayResult = { bytesUp: 0, bytesDown: 0 };
    let open = 2;
    const fail = (err: Error, other: Duplex, side: string) => {
      if (!result.error) {
        result.error =
          err instanceof AirlockError ? err : new AirlockError("STREAM_RESET", `${side}: ${err.message}`, { cause: err });
      }
      if (!other.destroyed) other.destroy(result.error);
    };
    client.on("data", (c: Buffer) => {
      result.bytesUp += c.length;
      onBytes?.(c.length, 0);
    });
    upstream.on("data", (c: Buffer) => {
      result.bytesDown += c.length;
      onBytes?.(0, c.length);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    // `finished` reports errors and premature closes (a side vanishing without
    // ending properly), which plain 'error' listeners would miss.
    finished(client, (err) => err && fail(err, upstream, "client"));
    finished(upstream, (err) => err && fail(err, client, "upstream"));
    const onClose = () => {
      if (--open === 0) resolve(result);
    };
    client.once("close", onClose);
    upstream.once("close", onClose);
  });
}
