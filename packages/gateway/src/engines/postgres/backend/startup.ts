// The client side of PostgreSQL's startup: answer the server's authentication request with the
// stored credentials, then collect ParameterStatus/BackendKeyData until ReadyForQuery.
// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
//
// A synchronous state machine fed one message at a time (see io.ts readUntil), so it is testable
// without I/O and cannot interleave with other work on the same connection.
//
// Cleartext and MD5 passwords are sent even when the stream is not TLS: the stream is the agent
// tunnel, encrypted up to the agent, and the operator chose the target's auth method. Configure
// TLS (or SCRAM) when the agent→target hop itself is untrusted.
import { AirlockError } from "@airlock/shared/errors";
import type { BackendMessage, ErrorFields, NoticeResponse, TransactionStatus } from "../protocol/types.js";
import { writeFrontend } from "../protocol/writer.js";
import { md5Password } from "./md5.js";
import { ScramClient } from "./scram.js";

export interface StartupCredentials {
  user: string;
  password: string;
}

export interface StartupOutcome {
  parameters: Array<{ name: string; value: string }>;
  backendKey: { processId: number; secretKey: Buffer } | null;
  status: TransactionStatus;
  notices: NoticeResponse[];
  authMethod: string;
}

const SCRAM = "SCRAM-SHA-256";
const SCRAM_PLUS = "SCRAM-SHA-256-PLUS";

export class StartupExchange {
  readonly parameters: Array<{ name: string; value: string }> = [];
  readonly notices: NoticeResponse[] = [];
  backendKey: { processId: number; secretKey: Buffer } | null = null;
  /** "trust" until the server asks for something. */
  authMethod = "trust";
  private authenticated = false;
  private status: TransactionStatus | undefined;
  private scram: ScramClient | undefined;

  constructor(
    private readonly credentials: StartupCredentials,
    private readonly send: (frame: Buffer) => void,
  ) {}

  /** Handles one server message; true when ReadyForQuery arrived (startup is over). */
  onMessage(m: BackendMessage): boolean {
    switch (m.type) {
      case "NoticeResponse":
        this.notices.push(m);
        return false;
      case "NegotiateProtocolVersion":
        // We ask for 3.0, which every server since 7.4 speaks; the answer only lists what it lacks.
        return false;
      case "ErrorResponse":
        throw startupError(m.fields, this.credentials.password);
      default:
        return this.authenticated ? this.afterAuth(m) : this.duringAuth(m);
    }
  }

  /** Everything needed once onMessage returned true. */
  outcome(): StartupOutcome {
    if (this.status === undefined) throw new Error("startup is not finished");
    const { parameters, backendKey, notices, authMethod, status } = this;
    return { parameters, backendKey, notices, authMethod, status };
  }

  private duringAuth(m: BackendMessage): boolean {
    const { user, password } = this.credentials;
    switch (m.type) {
      case "AuthenticationOk":
        // Mutual authentication: a SCRAM server must prove it knows the password before we trust it.
        if (this.scram !== undefined && !this.scram.verified) {
          throw new AirlockError("TARGET_AUTH_FAILED", "target skipped the SCRAM server signature");
        }
        this.authenticated = true;
        return false;
      case "AuthenticationCleartextPassword":
        this.expectFirstRequest("password");
        this.send(writeFrontend({ type: "PasswordMessage", password }));
        return false;
      case "AuthenticationMD5Password":
        this.expectFirstRequest("md5");
        this.send(writeFrontend({ type: "PasswordMessage", password: md5Password(user, password, m.salt) }));
        return false;
      case "AuthenticationSASL":
        this.expectFirstRequest("scram-sha-256");
        if (!m.mechanisms.includes(SCRAM)) {
          const offered = m.mechanisms.join(", ");
          throw new AirlockError(
            "TARGET_AUTH_FAILED",
            m.mechanisms.includes(SCRAM_PLUS)
              ? "target only offers SCRAM-SHA-256-PLUS (channel binding), which Airlock does not support"
              : `target offers no supported SASL mechanism (${offered})`,
            { details: { mechanisms: m.mechanisms } },
          );
        }
        // Plain SCRAM-SHA-256 with gs2 header "n,," even on TLS where -PLUS is offered: the server accepts it.
        this.scram = new ScramClient(password);
        this.send(writeFrontend({ type: "SASLInitialResponse", mechanism: SCRAM, data: this.scram.clientFirstMessage() }));
        return false;
      case "AuthenticationSASLContinue":
        this.send(writeFrontend({ type: "SASLResponse", data: this.requireScram().clientFinalMessage(m.data) }));
        return false;
      case "AuthenticationSASLFinal":
        this.requireScram().verifyServerFinal(m.data);
        return false;
      case "AuthenticationKerberosV5":
      case "AuthenticationGSS":
      case "AuthenticationGSSContinue":
      case "AuthenticationSSPI": {
        const method = { AuthenticationKerberosV5: "Kerberos V5", AuthenticationGSS: "GSSAPI", AuthenticationGSSContinue: "GSSAPI", AuthenticationSSPI: "SSPI" }[m.type];
        throw new AirlockError("TARGET_AUTH_FAILED", `target asks for ${method} authentication, which Airlock does not support`, {
          details: { method },
        });
      }
      default:
        throw unexpected(m.type, "authentication");
    }
  }

  private afterAuth(m: BackendMessage): boolean {
    switch (m.type) {
      case "ParameterStatus":
        this.parameters.push({ name: m.name, value: m.value });
        return false;
      case "BackendKeyData":
        // Copy: the reader's messages may be views of socket chunks.
        this.backendKey = { processId: m.processId, secretKey: Buffer.from(m.secretKey) };
        return false;
      case "ReadyForQuery":
        this.status = m.status;
        return true;
      default:
        throw unexpected(m.type, "startup");
    }
  }

  /** One authentication request per connection; a second, different one is a confused or hostile server. */
  private expectFirstRequest(method: string): void {
    if (this.authMethod !== "trust") throw unexpected(`a second authentication request (${method})`, "authentication");
    this.authMethod = method;
  }

  private requireScram(): ScramClient {
    if (this.scram === undefined) throw unexpected("SASL continuation without SASL", "authentication");
    return this.scram;
  }
}

function unexpected(what: string, phase: string): AirlockError {
  return new AirlockError("TARGET_PROTOCOL_ERROR", `target sent ${what} during ${phase}`);
}

/**
 * The server's FATAL during startup as a catalogue error. Class 28 (invalid authorization: bad
 * password, no pg_hba entry) means our credentials were refused; anything else (unknown database,
 * too many connections, starting up) is reported as a target failure. The server never echoes the
 * password, but its text is scrubbed anyway because it ends up in logs and API answers.
 */
export function startupError(fields: ErrorFields, password: string): AirlockError {
  const scrub = (s: string | undefined): string | undefined =>
    s === undefined || password.length === 0 ? s : s.replaceAll(password, "[redacted]");
  const sqlstate = fields.C ?? "";
  const message = scrub(fields.M) ?? "(no message)";
  const details: Record<string, unknown> = { sqlstate, message, severity: fields.V ?? fields.S };
  if (fields.D !== undefined) details.detail = scrub(fields.D);
  if (fields.H !== undefined) details.hint = scrub(fields.H);
  const code = sqlstate.startsWith("28") ? "TARGET_AUTH_FAILED" : "TARGET_PROTOCOL_ERROR";
  return new AirlockError(code, `target refused the connection: ${message} (SQLSTATE ${sqlstate || "none"})`, { details });
}
