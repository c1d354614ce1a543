// One catalogue of Airlock's errors: every error has a stable code that
// clients, logs and tests can match on, an HTTP status for the REST API, and
// keeps its `cause`. Add new codes here rather than throwing plain Errors.

export const ErrorCodes = {
  // Generic
  INTERNAL: { status: 500, message: "internal error" },
  INVALID_ARGUMENT: { status: 400, message: "invalid argument" },
  NOT_FOUND: { status: 404, message: "not found" },
  ALREADY_EXISTS: { status: 409, message: "already exists" },
  CONFIG_INVALID: { status: 500, message: "configuration is invalid" },
  // Identity
  UNAUTHENTICATED: { status: 401, message: "authentication required" },
  TOKEN_INVALID: { status: 401, message: "token is invalid" },
  TOKEN_EXPIRED: { status: 401, message: "token has expired" },
  TOKEN_REVOKED: { status: 401, message: "token was revoked" },
  TOKEN_ISSUER_UNKNOWN: { status: 401, message: "token issuer is not trusted" },
  TOKEN_AUDIENCE_MISMATCH: { status: 401, message: "token is not meant for this gateway (audience)" },
  TOKEN_ALGORITHM_REJECTED: { status: 401, message: "token signing algorithm is not accepted" },
  TOKEN_KEY_UNKNOWN: { status: 401, message: "token was signed with an unknown key" },
  TOKEN_SIGNATURE_INVALID: { status: 401, message: "token signature is invalid" },
  IDENTITY_DISABLED: { status: 401, message: "the identity behind this token was deleted or revoked" },
  LOGIN_FAILED: { status: 401, message: "sign-in failed" },
  LOGIN_PENDING: { status: 400, message: "sign-in is not finished yet" },
  IDP_UNAVAILABLE: { status: 502, message: "the identity provider could not be reached" },
  FEATURE_DISABLED: { status: 403, message: "this feature is disabled on the gateway" },
  RATE_LIMITED: { status: 429, message: "too many requests; slow down" },
  PERMISSION_DENIED: { status: 403, message: "permission denied" },
  // Agents and the tunnel
  ENROLLMENT_TOKEN_INVALID: { status: 401, message: "enrollment token is unknown" },
  ENROLLMENT_TOKEN_USED: { status: 401, message: "enrollment token was already used" },
  AGENT_KEY_INVALID: { status: 401, message: "agent key is unknown" },
  AGENT_REVOKED: { status: 401, message: "agent was revoked" },
  AGENT_VERSION_UNSUPPORTED: { status: 400, message: "agent speaks an unsupported tunnel protocol version" },
  AGENT_UNAVAILABLE: { status: 503, message: "no agent is online for this connection" },
  LINK_PROTOCOL_ERROR: { status: 502, message: "agent link protocol error" },
  LINK_LOST: { status: 502, message: "agent link was lost" },
  LINK_TIMEOUT: { status: 504, message: "agent link stopped answering keepalives" },
  STREAM_REFUSED: { status: 502, message: "agent could not reach the target" },
  STREAM_RESET: { status: 502, message: "stream was reset" },
  FLOW_CONTROL_VIOLATION: { status: 502, message: "peer sent more data than its window allows" },
  CLIENT_STALLED: { status: 408, message: "client stopped reading" },
  // Targets (protocol engines)
  TARGET_AUTH_FAILED: { status: 502, message: "the target refused the stored credentials" },
  TARGET_TLS_FAILED: { status: 502, message: "TLS to the target failed" },
  TARGET_PROTOCOL_ERROR: { status: 502, message: "the target broke its protocol" },
  CLIENT_PROTOCOL_ERROR: { status: 400, message: "the client broke its protocol" },
  // Guardrails
  STATEMENT_DENIED: { status: 403, message: "statement denied by policy" },
  STATEMENT_UNPARSABLE: { status: 403, message: "statement could not be parsed (denied)" },
  POLICY_INVALID: { status: 400, message: "policy bundle is invalid" },
  MASKING_UNSUPPORTED: { status: 400, message: "a masked column cannot be served in this format" },
  // Reviews (just-in-time approvals)
  REVIEW_REQUIRED: { status: 202, message: "a reviewer must approve this first" },
  REVIEW_CLOSED: { status: 409, message: "the review is no longer pending" },
  REVIEW_NOT_ELIGIBLE: { status: 403, message: "you may not decide this review" },
  REVIEW_SELF_APPROVAL: { status: 403, message: "a requester cannot approve their own request" },
  REVIEW_ALREADY_DECIDED: { status: 409, message: "you already decided this review" },
  WEBHOOK_SIGNATURE_INVALID: { status: 401, message: "webhook signature is invalid" },
  // Store and secrets
  STORE_UNAVAILABLE: { status: 503, message: "the store is unavailable" },
  SECRET_DECRYPT_FAILED: { status: 500, message: "a secret could not be decrypted" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

export class AirlockError extends Error {
  override readonly name = "AirlockError";
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields safe to show to the client (never secrets). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, opts?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? ErrorCodes[code].message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = ErrorCodes[code].status;
    this.details = opts?.details;
  }

  /** Wraps anything thrown into an AirlockError, keeping the original as `cause`. */
  static from(err: unknown, code: ErrorCode = "INTERNAL"): AirlockError {
    if (err instanceof AirlockError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new AirlockError(code, message, { cause: err });
  }

  static is(err: unknown, code?: ErrorCode): err is AirlockError {
    return err instanceof AirlockError && (code === undefined || err.code === code);
  }
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ErrorCodes, code);
}
