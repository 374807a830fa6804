-- tests/preload/programs/workload.sql — SQL for the preload suite's sqlite3 case.
--
-- How it works: fills two tables with 100,000 and 1,000 rows from recursive CTEs (values derived
-- from the row number, so every run is the same), builds indexes, then runs aggregate, join,
-- window and string queries whose results are printed and compared between a plain and a
-- preloaded run; a few results are also known in advance and checked by the suite.
.bail on
.headers off
.mode list
PRAGMA journal_mode = DELETE;
PRAGMA cache_size = -8000;

CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, region INTEGER NOT NULL);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer INTEGER NOT NULL REFERENCES customers(id),
  amount INTEGER NOT NULL,
  note TEXT
);

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO customers SELECT i, 'customer-' || printf('%04d', i), i % 7 FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO orders
SELECT i, (i * 7919) % 1000 + 1, (i * 104729) % 10007, 'note ' || (i % 97) || ' ' || printf('%08x', i * 2654435761 % 4294967296)
FROM n;

CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX orders_amount ON orders(amount);
CREATE INDEX customers_region ON customers(region);

SELECT 'rows', count(*), sum(amount), min(amount), max(amount) FROM orders;
SELECT 'regions', region, count(*), sum(o.amount)
  FROM orders o JOIN customers c ON c.id = o.customer
  GROUP BY region ORDER BY region;
SELECT 'top', c.name, sum(o.amount) AS total
  FROM orders o JOIN customers c ON c.id = o.customer
  GROUP BY c.id ORDER BY total DESC, c.id LIMIT 5;
SELECT 'range', count(*) FROM orders WHERE amount BETWEEN 1000 AND 1999;
SELECT 'notes', count(DISTINCT substr(note, 1, instr(note, ' ') + 2)), max(length(note)) FROM orders;
SELECT 'rank', id, amount, rnk FROM (
  SELECT id, amount, rank() OVER (PARTITION BY customer ORDER BY amount DESC, id) AS rnk
  FROM orders WHERE customer = 17
) WHERE rnk <= 3 ORDER BY rnk;
UPDATE orders SET amount = amount + 1 WHERE customer % 10 = 0;
DELETE FROM orders WHERE id % 3 = 0;
SELECT 'after', count(*), sum(amount) FROM orders;
PRAGMA integrity_check;
