// The answer to AuthenticationMD5Password (https://www.postgresql.org/docs/current/auth-password.html):
//   "md5" || hex(md5( hex(md5(password || user)) || salt ))
// The inner hash is what pg_authid stores for md5 roles; the 4-byte salt makes the answer one-time.
// MD5 is what the server asks for here, not a choice of ours; it is deprecated in PostgreSQL 18.
import { createHash } from "node:crypto";

export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash("md5").update(password, "utf8").update(user, "utf8").digest("hex");
  return `md5${createHash("md5").update(inner, "ascii").update(salt).digest("hex")}`;
}
