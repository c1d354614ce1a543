// The benchmark target: one small TCP server, run as its own process so its CPU
// is not mixed with the driver's, and used unchanged behind all three paths
// (direct, ssh -L, airlock). One port serves every mode because ssh -L and an
// airlock connection each forward to a single host:port.
//
// A client sends command lines, then the mode takes over the rest of the stream:
//   PING\n           → PONG\n, then the next command (proves the path is up end to end)
//   SOURCE <n>\n     → n bytes as fast as the socket takes them, then FIN
//   SOURCE inf\n     → bytes as fast as the socket takes them, until the client goes
//   SINK\n           → reads and counts everything up to FIN, then OK <count>\n and FIN
//   ECHO\n           → echoes everything back
//
// Usage: node bench/target.mjs [--port N]; prints "listening PORT" once ready.
import { randomBytes } from "node:crypto";
import net from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { port: { type: "string", default: "0" } } });
// Random bytes, so nothing on any path could compress them.
const CHUNK = randomBytes(1024 * 1024);

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
  sock.on("error", () => {}); // clients reset connections when they are done
  let buf = Buffer.alloc(0);
  const onData = (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl < 0) {
        if (buf.length > 256) sock.destroy(); // not a command line
        return;
      }
      const line = buf.subarray(0, nl).toString("latin1").trim();
      buf = buf.subarray(nl + 1);
      const [cmd, arg] = line.split(" ");
      if (cmd === "PING") {
        sock.write("PONG\n");
        continue;
      }
      sock.off("data", onData);
      if (cmd === "SOURCE") return source(sock, arg === "inf" ? Infinity : Number(arg));
      if (cmd === "SINK") return sink(sock, buf);
      if (cmd === "ECHO") return echo(sock, buf);
      sock.end(`ERR unknown command ${cmd}\n`);
      return;
    }
  };
  sock.on("data", onData);
});

function source(sock, total) {
  sock.resume(); // whatever the client sends now is ignored
  let left = total;
  const pump = () => {
    while (left > 0 && !sock.destroyed) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      const ok = sock.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
      if (!ok) return void sock.once("drain", pump);
    }
    if (left <= 0) sock.end();
  };
  pump();
}

function sink(sock, leftover) {
  let count = leftover.length;
  sock.on("data", (d) => (count += d.length));
  sock.on("end", () => sock.end(`OK ${count}\n`));
}

function echo(sock, leftover) {
  if (leftover.length) sock.write(leftover);
  sock.pipe(sock);
}

server.listen(Number(values.port), "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
