-- Events done with a key stay, recorded as the system's.
UPDATE audit_events SET actor_kind = 'system' WHERE actor_kind = 'api_key';
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('anonymous', 'operator', 'tenant_admin', 'system', 'cli'));
DROP INDEX IF EXISTS connections_tenant_customer_idx;
ALTER TABLE connect_links DROP CONSTRAINT IF EXISTS connect_links_created_by_key_fkey;
DROP TABLE idempotency_keys;
DROP TABLE api_keys;
