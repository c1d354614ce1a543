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
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port });
  await server.start();
  const addr = (server as unknown as { server?: import("node:net").Server }).server?.address();
  const actualPort = typeof addr === "object" && addr ? addr.port : port;
  return {
    host: "127.0.0.1",
    port: actualPort,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
