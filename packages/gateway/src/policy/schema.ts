// Generated from schema.cedarschema by hand; schema.test.ts asserts the two
// are identical. Embedded because tsc does not copy .cedarschema into dist/.
export const SCHEMA_TEXT = `// Airlock policy schema. Keep in sync with schema.ts (a test asserts equality).
namespace Airlock {
  // Principals. Groups may nest so directory hierarchies map 1:1.
  entity Group in [Group];
  entity User in [Group];
  entity ServiceAccount in [Group];

  // Resources form a containment chain so \`resource in Connection::"x"\`
  // matches every database/schema/table under that connection.
  // labels are "k=v" strings: Cedar records need a fixed shape, sets do not.
  entity Connection = { labels: Set<String>, type: String };
  entity Database in [Connection] = { name: String };
  entity Schema in [Database] = { name: String };
  entity Table in [Schema] = { name: String };

  type Time = { hour: Long, weekday: Long };
  type Statement = {
    kind: String,
    hasWhere: Bool,
    risky: Set<String>,
    tables: Set<String>,
  };
  // Everything except clientAddr is always filled in by the engine so
  // policies need no \`has\` guards (strict validation would demand them).
  type Ctx = {
    env: String,
    labels: Set<String>,
    time: Time,
    clientAddr?: ipaddr,
    statement: Statement,
  };

  // Action groups: policies usually target these instead of single kinds.
  action read, write, admin;

  action connect appliesTo {
    principal: [User, ServiceAccount],
    resource: [Connection],
    context: Ctx,
  };
  // tcl (BEGIN/COMMIT) is harmless and needed by read-only clients -> read.
  action select, explain, tcl in [read] appliesTo {
    principal: [User, ServiceAccount],
    resource: [Connection, Database, Schema, Table],
    context: Ctx,
  };
  // copy counts as write: the statement kind does not say TO vs FROM.
  action insert, update, delete, merge, copy, call in [write] appliesTo {
    principal: [User, ServiceAccount],
    resource: [Connection, Database, Schema, Table],
    context: Ctx,
  };
  action ddl, dcl, utility in [admin] appliesTo {
    principal: [User, ServiceAccount],
    resource: [Connection, Database, Schema, Table],
    context: Ctx,
  };
}
`;
