import { pino, type DestinationStream, type Logger, type LoggerOptions } from "pino";

export type { Logger };

/**
 * Every component takes a logger instead of creating one, so tests and the
 * dev command can route or silence output. Secrets are redacted by path as a
 * second line of defence; code must not log them in the first place.
 */
export function createLogger(opts: LoggerOptions & { name?: string } = {}, destination?: DestinationStream): Logger {
  return pino({
    level: process.env.AIRLOCK_LOG_LEVEL ?? "info",
    redact: {
      paths: [
        "token", "*.token", "password", "*.password", "secret", "*.secret", "secrets", "*.secrets",
        "agentKey", "*.agentKey", "enrollmentToken", "*.enrollmentToken",
        "req.headers.authorization", "headers.authorization",
      ],
      censor: "[redacted]",
    },
    ...opts,
  }, destination as DestinationStream);
}

export const silentLogger: Logger = pino({ level: "silent" });
