// Translates jose's verification errors into Airlock's error codes with a
// message that tells the client exactly what was wrong. The original error is
// kept as `cause` for logs. Messages carry claim values (truncated), never the
// token text.
import { AirlockError } from "@airlock/shared";
import { errors } from "jose";
import type { ResolvedIssuer } from "./config.js";
import { describeValue, numericDateToIso, truncate } from "./token-parse.js";

export interface VerifyContext {
  readonly cfg: ResolvedIssuer;
  readonly alg: string;
  readonly kid: unknown;
}

function claimError(err: errors.JWTClaimValidationFailed | errors.JWTExpired, ctx: VerifyContext): AirlockError {
  const { claim, reason, payload } = err;
  const keep = { cause: err };
  if (reason === "missing") return new AirlockError("TOKEN_INVALID", `token has no "${claim}" claim`, keep);
  if (reason === "invalid") return new AirlockError("TOKEN_INVALID", `token claim "${claim}" is invalid: ${err.message}`, keep);
  switch (claim) {
    case "exp":
      return new AirlockError("TOKEN_EXPIRED", `token expired at ${numericDateToIso(payload.exp)}`, keep);
    case "nbf":
      return new AirlockError("TOKEN_INVALID", `token is not valid before ${numericDateToIso(payload.nbf)}`, keep);
    case "aud":
      return new AirlockError(
        "TOKEN_AUDIENCE_MISMATCH",
        `token audience ${describeValue(payload.aud)} does not contain ${ctx.cfg.audience.length === 1 ? "the expected" : "any expected"} audience ${describeValue(ctx.cfg.audience.length === 1 ? ctx.cfg.audience[0] : ctx.cfg.audience)}`,
        keep,
      );
    case "iss":
      return new AirlockError("TOKEN_ISSUER_UNKNOWN", `token issuer ${describeValue(payload.iss)} is not trusted`, keep);
    default:
      return new AirlockError("TOKEN_INVALID", `token claim "${claim}" was rejected: ${err.message}`, keep);
  }
}

export function mapVerifyError(err: unknown, ctx: VerifyContext): AirlockError {
  if (err instanceof AirlockError) return err;
  const keep = { cause: err };
  if (err instanceof errors.JWTExpired || err instanceof errors.JWTClaimValidationFailed) return claimError(err, ctx);
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new AirlockError("TOKEN_SIGNATURE_INVALID", `token signature does not verify with the key of issuer ${ctx.cfg.issuer}`, keep);
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    const which = ctx.kid === undefined ? `no key for algorithm ${ctx.alg} (token has no kid)` : `no ${ctx.alg} key with kid ${describeValue(ctx.kid)}`;
    return new AirlockError("TOKEN_KEY_UNKNOWN", `the JWKS of issuer ${ctx.cfg.issuer} has ${which}`, keep);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new AirlockError("TOKEN_ALGORITHM_REJECTED", `token algorithm ${describeValue(ctx.alg)} is not accepted`, keep);
  }
  if (err instanceof errors.JWKSTimeout) {
    return new AirlockError("IDP_UNAVAILABLE", `signing keys of issuer ${ctx.cfg.issuer} could not be loaded: timed out`, keep);
  }
  // JWSInvalid, JWTInvalid, JOSENotSupported (e.g. unknown "crit"), key/size checks, anything else:
  // the token cannot be accepted. jose's messages describe the defect without quoting the token.
  const detail = err instanceof Error ? err.message : String(err);
  return new AirlockError("TOKEN_INVALID", `token could not be verified: ${truncate(detail, 200)}`, keep);
}
