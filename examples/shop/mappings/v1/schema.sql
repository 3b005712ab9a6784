-- Example application "shop", schema version 1: an online shop whose framework stores
-- local wall-clock times (`timestamp without time zone`, written in Europe/Berlin) and
-- money as integer cents. Unqualified names: bluegreen applies this file inside a scratch
-- schema to learn the version's catalog, and into the database's schema for `schema apply`.

CREATE FUNCTION shop_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- now() is the transaction's start; stored as the session's local time (Europe/Berlin).
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TABLE customers (
  id          uuid PRIMARY KEY,
  email       text NOT NULL UNIQUE,
  name        text,
  created_at  timestamp without time zone NOT NULL DEFAULT now(),
  updated_at  timestamp without time zone NOT NULL DEFAULT now()
);
CREATE INDEX customers_updated_at_idx ON customers (updated_at);

-- The catalog: prices are set by a back-office job that stamps updated_at itself (no
-- trigger), from a clock that may run a little behind the database's.
CREATE TABLE products (
  sku          text PRIMARY KEY,
  title        text NOT NULL,
  price_cents  bigint NOT NULL CHECK (price_cents >= 0),
  updated_at   timestamp without time zone NOT NULL
);

CREATE TABLE orders (
  id           uuid PRIMARY KEY,
  customer_id  uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  status       text NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
  total_cents  bigint NOT NULL,
  placed_at    timestamp without time zone NOT NULL,
  updated_at   timestamp without time zone NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_updated_at_idx ON orders (updated_at);

-- Composite key: an order's lines are numbered within the order. (Added to the shop
-- later than the rest, it already keeps its times as timestamptz.)
CREATE TABLE order_lines (
  order_id          uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line_no           integer NOT NULL,
  sku               text NOT NULL REFERENCES products (sku),
  quantity          integer NOT NULL CHECK (quantity > 0),
  unit_price_cents  bigint NOT NULL,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_updated_at_idx ON order_lines (updated_at);

-- Audit trail: no key, rows are only ever inserted (and outlive their order).
CREATE TABLE order_events (
  order_id     uuid NOT NULL,
  kind         text NOT NULL,
  detail       text,
  recorded_at  timestamp without time zone NOT NULL DEFAULT now()
);
CREATE INDEX order_events_recorded_at_idx ON order_events (recorded_at);

CREATE TRIGGER customers_touch BEFORE UPDATE ON customers
  FOR EACH ROW EXECUTE FUNCTION shop_touch();
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION shop_touch();
CREATE TRIGGER order_lines_touch BEFORE UPDATE ON order_lines
  FOR EACH ROW EXECUTE FUNCTION shop_touch();

-- Watermarks: local times written in Europe/Berlin (order_lines: timestamptz);
-- products.updated_at is set by the application's own clock, allowed to lag the
-- database by up to 30 seconds.
COMMENT ON COLUMN customers.updated_at IS 'bluegreen:watermark zone=Europe/Berlin';
COMMENT ON COLUMN products.updated_at IS 'bluegreen:watermark zone=Europe/Berlin skew=30s';
COMMENT ON COLUMN orders.updated_at IS 'bluegreen:watermark zone=Europe/Berlin';
COMMENT ON COLUMN order_lines.updated_at IS 'bluegreen:watermark';
COMMENT ON COLUMN order_events.recorded_at IS 'bluegreen:watermark zone=Europe/Berlin';
