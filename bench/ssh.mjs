// The baseline users reach for instead of airlock: an OpenSSH local port
// forward (`ssh -L`) over loopback, with default ciphers. We run our own sshd
// on a free port with throwaway keys, so nothing on the machine is touched
// except /run/sshd, the privilege-separation directory sshd insists on.
//
// Not a bench by itself: bench/tunnel.mjs uses startSshForward().
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { freePort, start, waitForLog } from "./lib/procs.mjs";

const SSHD = "/usr/sbin/sshd";

/** Why ssh -L cannot be measured here, or null when it can. */
export function sshUnavailable() {
  const missing = [SSHD, "ssh", "ssh-keygen"].filter((b) => !which(b));
  if (!missing.length) return null;
  return `OpenSSH not found (${missing.join(", ")}); install it with: apt-get install -y openssh-server openssh-client`;
}

function which(bin) {
  if (bin.startsWith("/")) return fs.existsSync(bin);
  return (process.env.PATH ?? "").split(":").some((d) => d && fs.existsSync(join(d, bin)));
}

export function sshVersion() {
  try {
    return execFileSync("ssh", ["-V"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch (err) {
    return String(err.stderr ?? "").trim(); // ssh -V prints on stderr
  }
}

/**
 * Starts sshd and `ssh -N -L LOCAL:127.0.0.1:targetPort`. Returns the local
 * port, the negotiated cipher (from ssh -v) and both process records.
 */
export async function startSshForward(dir, targetPort) {
  const why = sshUnavailable();
  if (why) throw new Error(why);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostKey = join(dir, "host_ed25519");
  const userKey = join(dir, "user_ed25519");
  for (const k of [hostKey, userKey]) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", k]);
  fs.copyFileSync(`${userKey}.pub`, join(dir, "authorized_keys"));
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

  const sshPort = await freePort();
  const user = os.userInfo().username;
  const config = join(dir, "sshd_config");
  fs.writeFileSync(
    config,
    [
      `Port ${sshPort}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "StrictModes no", // our temp dir is not a home directory
      "UsePAM no",
      "AllowTcpForwarding yes",
      "LogLevel INFO",
      "",
    ].join("\n"),
  );
  // -D: stay in the foreground so we own the process; -e: log to stderr (our log file).
  const sshd = start("sshd", SSHD, ["-D", "-e", "-f", config], { log: join(dir, "sshd.log") });
  await waitForLog(sshd, /Server listening on 127\.0\.0\.1 port/);

  const localPort = await freePort();
  const ssh = start(
    "ssh -L",
    "ssh",
    [
      "-v", // to learn the negotiated cipher and when the forward is listening
      "-N",
      "-L",
      `127.0.0.1:${localPort}:127.0.0.1:${targetPort}`,
      "-o", "StrictHostKeyChecking=no",
      "-o", "UserKnownHostsFile=/dev/null",
      "-o", "BatchMode=yes",
      "-o", "ExitOnForwardFailure=yes",
      "-i", userKey,
      "-p", String(sshPort),
      `${user}@127.0.0.1`,
    ],
    { log: join(dir, "ssh.log") },
  );
  await waitForLog(ssh, /Local forwarding listening on 127\.0\.0\.1 port/);
  const log = fs.readFileSync(ssh.log, "utf8");
  const cipher = log.match(/kex: server->client cipher: (\S+) MAC: (\S+)/);
  const kex = log.match(/kex: algorithm: (\S+)/);
  return {
    sshd,
    ssh,
    port: localPort,
    cipher: cipher ? `${cipher[1]}${cipher[2] === "<implicit>" ? "" : ` + ${cipher[2]}`}` : "unknown",
    kex: kex?.[1] ?? "unknown",
  };
}

/** Pids of sshd's per-connection processes (they setsid, so not in sshd's group). */
export { descendants as sshdSessionPids } from "./lib/procs.mjs";
