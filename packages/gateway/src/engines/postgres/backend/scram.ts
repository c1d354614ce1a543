// SCRAM-SHA-256 client (RFC 5802 + RFC 7677) as PostgreSQL uses it, without channel binding.
// PostgreSQL's flavour: https://www.postgresql.org/docs/current/sasl-authentication.html
//
//   client-first  = "n,," "n=*,r=" cnonce                      (gs2 header "n,,": no channel binding)
//   server-first  = "r=" cnonce snonce ",s=" b64(salt) ",i=" iterations [",…"]
//   client-final  = "c=biws,r=" cnonce snonce ",p=" b64(ClientProof)   (biws = b64("n,,"))
//   server-final  = "v=" b64(ServerSignature) | "e=" error
//
// The username is ignored by PostgreSQL (it takes the startup packet's); libpq sends an empty one,
// node-postgres and pgjdbc "*", which is also a valid RFC 5802 saslname. Pure: no I/O.
// The server signature is always checked (mutual authentication): a target that does not know the
// password cannot produce it, so a spoofed target is rejected before we run any statement on it.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { AirlockError } from "@airlock/shared/errors";
import { saslPrep } from "./saslprep.js";

const GS2_HEADER = "n,,";
/** 18 random bytes, like libpq (SCRAM_RAW_NONCE_LEN), base64: 24 printable characters. */
const NONCE_BYTES = 18;
const KEY_LENGTH = 32;
/**
 * pbkdf2 runs synchronously on the event loop; a hostile target could ask for 2^31 iterations to stall
 * the gateway. PostgreSQL's default is 4096 and hardened setups use up to a few 100k (OWASP: 600k).
 */
export const MAX_SCRAM_ITERATIONS = 1_000_000;

type State = "initial" | "first-sent" | "final-sent" | "done";

export class ScramClient {
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private state: State = "initial";
  private expectedServerSignature: Buffer | undefined;

  /**
   * @param password the target's password (SASLprep'd here, like libpq; see saslprep.ts)
   * @param nonce fixed client nonce, for test vectors only; random otherwise
   * @param user saslname to send, for test vectors only: PostgreSQL ignores it
   */
  constructor(
    private readonly password: string,
    nonce?: string,
    user = "*",
  ) {
    this.clientNonce = nonce ?? randomBytes(NONCE_BYTES).toString("base64");
    // Printable ASCII except ',' (RFC 5802 "printable"); a caller-supplied nonce is a programming error.
    if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(this.clientNonce)) throw new RangeError("invalid SCRAM nonce");
    this.clientFirstBare = `n=${escapeSaslName(user)},r=${this.clientNonce}`;
  }

  /** The SASLInitialResponse payload. */
  clientFirstMessage(): Buffer {
    this.expectState("initial");
    this.state = "first-sent";
    return Buffer.from(GS2_HEADER + this.clientFirstBare, "utf8");
  }

  /** Checks the server-first-message and returns the SASLResponse payload (with the proof). */
  clientFinalMessage(serverFirst: Buffer): Buffer {
    this.expectState("first-sent");
    const serverFirstText = decodeText(serverFirst, "server-first-message");
    const { nonce, salt, iterations } = parseServerFirst(serverFirstText);
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw fail("the server nonce does not extend ours");
    }
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString("base64")},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirstText},${withoutProof}`;

    const salted = pbkdf2Sync(saslPrep(this.password), salt, iterations, KEY_LENGTH, "sha256");
    const clientKey = hmac(salted, "Client Key");
    const storedKey = createHash("sha256").update(clientKey).digest();
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(KEY_LENGTH);
    for (let i = 0; i < KEY_LENGTH; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.expectedServerSignature = hmac(hmac(salted, "Server Key"), authMessage);

    this.state = "final-sent";
    return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`, "utf8");
  }

  /** Checks the server-final-message: the server proves it knows the password too. */
  verifyServerFinal(serverFinal: Buffer): void {
    this.expectState("final-sent");
    const text = decodeText(serverFinal, "server-final-message");
    const first = text.split(",", 1)[0]!;
    // "e=" carries a fixed token (invalid-proof, …) from RFC 5802, safe to show.
    if (first.startsWith("e=")) throw fail(`the server rejected the exchange: ${first.slice(2)}`);
    if (!first.startsWith("v=")) throw fail("malformed server-final-message");
    const signature = decodeBase64(first.slice(2), "server signature");
    const expected = this.expectedServerSignature!;
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      throw fail("the server signature is wrong: the target does not know the password");
    }
    this.state = "done";
  }

  /** True once the server signature was verified. */
  get verified(): boolean {
    return this.state === "done";
  }

  private expectState(state: State): void {
    if (this.state !== state) throw fail(`unexpected SCRAM message (state ${this.state})`);
  }
}

/** server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions] */
function parseServerFirst(text: string): { nonce: string; salt: Buffer; iterations: number } {
  const parts = text.split(",");
  if (parts[0]?.startsWith("m=")) throw fail("the server requires an unsupported SCRAM extension");
  const [r, s, i] = parts;
  if (!r?.startsWith("r=") || !s?.startsWith("s=") || !i?.startsWith("i=")) throw fail("malformed server-first-message");
  const nonce = r.slice(2);
  if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(nonce)) throw fail("invalid server nonce");
  const salt = decodeBase64(s.slice(2), "salt");
  if (salt.length === 0) throw fail("empty salt");
  if (!/^[0-9]{1,10}$/.test(i.slice(2))) throw fail("invalid iteration count");
  const iterations = Number(i.slice(2));
  if (iterations < 1 || iterations > MAX_SCRAM_ITERATIONS) throw fail(`iteration count ${iterations} out of range`);
  return { nonce, salt, iterations };
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

/** Strict base64: Buffer.from(…, "base64") silently skips garbage, which would hide a broken server. */
function decodeBase64(text: string, what: string): Buffer {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) throw fail(`invalid base64 in ${what}`);
  return Buffer.from(text, "base64");
}

function decodeText(data: Buffer, what: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch {
    throw fail(`${what} is not valid UTF-8`);
  }
}

/** saslname: ',' and '=' are written =2C and =3D. */
function escapeSaslName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

function fail(message: string): AirlockError {
  return new AirlockError("TARGET_AUTH_FAILED", `SCRAM: ${message}`);
}
