// Prisma CLI configuration (read by `prisma generate` / `prisma migrate diff`).
//
// Why the JS engine + a driver adapter: the Rust schema-engine binary is
// downloaded on first use, which fails offline; the JS/WASM engine ships inside
// the `prisma` package but needs an adapter to talk to a database, even for
// `migrate diff --from-empty` (it connects before diffing). We hand it
// in-memory PGlite, so the CLI never needs a server, and the shadow database
// that `--from-migrations` replays migrations into is in-memory PGlite too.
// DATABASE_URL must still be set (the schema's datasource reads it) but the CLI
// never uses it. We never run `prisma migrate deploy` (prisma/orm#27403): the
// gateway applies prisma/migrations itself at start (src/store/migrate.ts).
import { PGlite } from "@electric-sql/pglite";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { defineConfig } from "prisma/config";

type Adapter = Awaited<ReturnType<PrismaPGlite["connect"]>>;

// The schema engine replays a migration.sql with one parameterless
// executeRaw. pg sends that over the simple query protocol, which accepts many
// statements; PGlite's query() always uses the extended protocol, which
// rejects them ("cannot insert multiple commands into a prepared statement").
// So route parameterless statements through PGlite's exec() (simple protocol).
async function connectTo(db: PGlite): Promise<Adapter> {
  const adapter = await new PrismaPGlite(db).connect();
  const executeRaw = adapter.executeRaw.bind(adapter);
  adapter.executeRaw = async (query) => {
    if (query.args.length > 0) return executeRaw(query);
    const results = await db.exec(query.sql);
    return results.at(-1)?.affectedRows ?? 0;
  };
  return adapter;
}

class CliPGlite extends PrismaPGlite {
  constructor(private readonly db: PGlite) {
    super(db);
  }
  override connect(): Promise<Adapter> {
    return connectTo(this.db);
  }
  override connectToShadowDb(): Promise<Adapter> {
    return connectTo(new PGlite("memory://shadow"));
  }
}

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  async adapter() {
    return new CliPGlite(new PGlite("memory://prisma-cli"));
  },
});
