-- Sample data for the `sample-db` target in docker-compose.yml.
-- Runs once, when the sample-db volume is first initialised.
CREATE TABLE IF NOT EXISTS customers (
  id         integer PRIMARY KEY,
  name       text        NOT NULL,
  country    text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders (
  id          integer PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers (id),
  total_cents integer NOT NULL CHECK (total_cents >= 0),
  placed_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO customers (id, name, country) VALUES
  (1, 'Ada Lovelace', 'GB'),
  (2, 'Grace Hopper', 'US'),
  (3, 'Edsger Dijkstra', 'NL')
ON CONFLICT (id) DO NOTHING;

INSERT INTO orders (id, customer_id, total_cents) VALUES
  (1, 1, 1999),
  (2, 1, 4500),
  (3, 2, 250),
  (4, 3, 12000)
ON CONFLICT (id) DO NOTHING;
