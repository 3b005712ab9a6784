-- Example application "shop", schema version 2: times become timestamptz, money becomes
-- numeric(12,2) in currency units, order statuses are renamed and orders carry a currency.

CREATE FUNCTION shop_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TABLE customers (
  id          uuid PRIMARY KEY,
  email       text NOT NULL UNIQUE,
  name        text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_updated_at_idx ON customers (updated_at);

CREATE TABLE products (
  sku         text PRIMARY KEY,
  title       text NOT NULL,
  price       numeric(12,2) NOT NULL CHECK (price >= 0),
  updated_at  timestamptz NOT NULL
);

CREATE TABLE orders (
  id           uuid PRIMARY KEY,
  customer_id  uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  status       text NOT NULL CHECK (status IN ('pending', 'paid', 'fulfilled', 'canceled')),
  total        numeric(12,2) NOT NULL,
  currency     text NOT NULL DEFAULT 'EUR',
  placed_at    timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_updated_at_idx ON orders (updated_at);

CREATE TABLE order_lines (
  order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line_no     integer NOT NULL,
  sku         text NOT NULL REFERENCES products (sku),
  quantity    integer NOT NULL CHECK (quantity > 0),
  unit_price  numeric(12,2) NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_updated_at_idx ON order_lines (updated_at);

CREATE TABLE order_events (
  order_id     uuid NOT NULL,
  kind         text NOT NULL,
  detail       text,
  recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_events_recorded_at_idx ON order_events (recorded_at);

CREATE TRIGGER customers_touch BEFORE UPDATE ON customers
  FOR EACH ROW EXECUTE FUNCTION shop_touch();
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION shop_touch();
CREATE TRIGGER order_lines_touch BEFORE UPDATE ON order_lines
  FOR EACH ROW EXECUTE FUNCTION shop_touch();

COMMENT ON COLUMN customers.updated_at IS 'bluegreen:watermark';
COMMENT ON COLUMN products.updated_at IS 'bluegreen:watermark skew=30s';
COMMENT ON COLUMN orders.updated_at IS 'bluegreen:watermark';
COMMENT ON COLUMN order_lines.updated_at IS 'bluegreen:watermark';
COMMENT ON COLUMN order_events.recorded_at IS 'bluegreen:watermark';
