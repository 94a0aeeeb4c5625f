-- The tenant API (issue 14): API keys and the Idempotency-Key store.

-- API keys of a tenant: `fgk_<prefix>_<secret>`. The prefix is a public lookup id; only the SHA-256
-- of the 256-bit random secret is kept (a secret that random needs no slow hash: there is nothing
-- to guess from the digest). Revoked keys stay listed (revoked_at), so the audit trail can name them.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    scopes        text[] NOT NULL
                  CHECK (cardinality(scopes) >= 1 AND array_position(scopes, NULL) IS NULL),
    prefix        text NOT NULL UNIQUE CHECK (char_length(prefix) BETWEEN 8 AND 32),
    secret_hash   bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at DESC);

-- One row per (API key, Idempotency-Key) of a POST: inserted before the work (the unique key makes
-- concurrent twins wait), completed with the answer, replayed for 24 hours, then purged by the reaper.
CREATE TABLE idempotency_keys (
    api_key_id       uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    idempotency_key  text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    request_hash     bytea NOT NULL,
    response_status  smallint,
    response_body    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, idempotency_key),
    CONSTRAINT idempotency_keys_response_complete
        CHECK ((response_status IS NULL) = (response_body IS NULL))
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- What an API key does is audited with actor kind `api_key` (the key's id in the details).
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check
    CHECK (actor_kind IN ('anonymous', 'operator', 'tenant_admin', 'system', 'cli', 'api_key'));

-- A link made by a key names it (connect_links.created_by_key, column of the links migration);
-- a deleted key leaves the link, unattributed.
ALTER TABLE connect_links ADD CONSTRAINT connect_links_created_by_key_fkey
    FOREIGN KEY (created_by_key) REFERENCES api_keys (id) ON DELETE SET NULL;

-- The API filters connections by customer and pages them newest first.
CREATE INDEX connections_tenant_customer_idx ON connections (tenant_id, customer_id) WHERE customer_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys, idempotency_keys TO finchgate_app;

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));
