import net from "node:net";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { fakePeople } from "./fake-people.js";

export interface DemoTarget {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * The quickstart's demo database: an embedded Postgres (PGlite, persisted in
 * dataDir) behind a Postgres wire-protocol socket, holding fake customers.
 * PGlite has one backend session shared by all connections: fine for a demo.
 */
export async function startDemoTarget(dataDir: string, port = 0): Promise<DemoTarget> {
  const db = await PGlite.create({ dataDir });
  await db.exec(`
    CREATE TABLE IF NOT EXISTS customers (
      id integer PRIMARY KEY,
      full_name text NOT NULL,
      email text NOT NULL,
      phone text NOT NULL,
      card_number text NOT NULL,
      city text NOT NULL,
      signup_date date NOT NULL
    )`);
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM customers");
  if ((rows[0]?.n ?? 0) === 0) {
    for (const p of fakePeople(200)) {
      await db.query("INSERT INTO customers VALUES ($1, $2, $3, $4, $5, $6, $7)", [p.id, p.fullName, p.email, p.phone, p.cardNumber, p.city, p.signupDate]);
    }
  }
  const inner = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 100 });
  await inner.start();
  const innerPort = Number(inner.getServerConn().split(":").pop());
  const front = await listenFront(innerPort, port);
  return {
    host: "127.0.0.1",
    port: (front.address() as net.AddressInfo).port,
    async stop() {
      await new Promise((r) => front.close(r));
      await inner.stop();
      await db.close();
    },
  };
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * pglite-socket does not understand SSLRequest/GSSENCRequest (psql sends one
 * first by default and would hang), so this front answers "N" (no encryption,
 * as a server without TLS does) and then relays the connection to it.
 */
function listenFront(innerPort: number, port: number): Promise<net.Server> {
  const server = net.createServer((client) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 8 && buf.readInt32BE(0) === 8 && [SSL_REQUEST, GSSENC_REQUEST].includes(buf.readInt32BE(4))) {
        client.write("N");
        buf = buf.subarray(8);
      }
      if (buf.length < 8) return;
      client.off("data", onData);
      client.pause();
      const upstream = net.connect(innerPort, "127.0.0.1", () => {
        upstream.write(buf);
        client.pipe(upstream).on("error", () => client.destroy());
        upstream.pipe(client).on("error", () => upstream.destroy());
        client.resume();
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    };
    client.on("data", onData);
    client.on("error", () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}
