DROP INDEX IF EXISTS connections_tenant_customer_idx;
DROP TABLE idempotency_keys;
DROP TABLE api_keys;
