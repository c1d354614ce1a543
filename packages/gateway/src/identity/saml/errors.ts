// How the SAML code says no: LOGIN_FAILED for a refused sign-in (the message
// says what was wrong), CONFIG_INVALID for a provider that cannot be built.
import { AirlockError } from "@airlock/shared";

export function fail(message: string, cause?: unknown): never {
  throw new AirlockError("LOGIN_FAILED", message, cause === undefined ? undefined : { cause });
}

export function configError(name: string, message: string, cause?: unknown): never {
  throw new AirlockError("CONFIG_INVALID", `SAML provider ${JSON.stringify(name)}: ${message}`, cause === undefined ? undefined : { cause });
}

/** Quotes a value from the document or configuration for an error message, cut to max characters. */
export const q = (s: string, max = 200) => JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
