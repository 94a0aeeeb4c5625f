-- Connect links: a tenant asks one customer to connect (or reconnect) without a finchgate account.

-- The whitelist gains a kind: redirect URIs (Finch sends the browser there) and return URIs (a
-- connect link sends the customer's browser there afterwards). Same exact-match rules for both.
ALTER TABLE redirect_uris
    ADD COLUMN kind text NOT NULL DEFAULT 'redirect' CHECK (kind IN ('redirect', 'return'));
ALTER TABLE redirect_uris DROP CONSTRAINT redirect_uris_tenant_id_uri_key;
ALTER TABLE redirect_uris ADD CONSTRAINT redirect_uris_tenant_id_kind_uri_key UNIQUE (tenant_id, kind, uri);

-- One row per link. The token (256 random bits) is stored only as its SHA-256. The status is
-- derived: revoked_at, then completed_at, then expires_at, then the last attempt, then opened_at.
CREATE TABLE connect_links (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id               uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash              bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    customer_id             text NOT NULL CHECK (char_length(customer_id) BETWEEN 1 AND 255),
    customer_name           text NOT NULL CHECK (char_length(customer_name) BETWEEN 1 AND 255),
    products                text[] NOT NULL
                            CHECK (cardinality(products) >= 1 AND array_position(products, NULL) IS NULL),
    sandbox                 text CHECK (sandbox IN ('finch', 'provider')),
    flow                    text NOT NULL CHECK (flow IN ('redirect', 'embedded')),
    redirect_uri_id         uuid REFERENCES redirect_uris (id) ON DELETE SET NULL,
    -- The exact whitelisted return URI (kind 'return') at creation; null: finchgate's own page.
    return_uri              text CHECK (char_length(return_uri) <= 2048),
    -- A reconnect link: the connection it reconnects (Finch's reauthenticate session).
    reconnect_connection_id uuid REFERENCES connections (id) ON DELETE SET NULL,
    -- Who created it: an admin, or (later) an API key.
    created_by_user         uuid REFERENCES users (id) ON DELETE SET NULL,
    created_by_key          uuid,
    created_at              timestamptz NOT NULL DEFAULT now(),
    expires_at              timestamptz NOT NULL,
    opened_at               timestamptz,
    -- The flow of the browser that pressed "Continue" last: the only one that may finish. No
    -- foreign key: connect_flows already names its link, and finished flows are purged.
    current_flow_id         uuid,
    completed_at            timestamptz,
    connection_id           uuid REFERENCES connections (id) ON DELETE SET NULL,
    -- The last failed attempt (the link stays usable until it completes, expires or is revoked).
    failed_attempt_id       uuid REFERENCES exchange_attempts (id) ON DELETE SET NULL,
    revoked_at              timestamptz,
    revoked_by              uuid REFERENCES users (id) ON DELETE SET NULL,
    CHECK (expires_at > created_at),
    CONSTRAINT connect_links_redirect_uri_for_redirect
        CHECK (flow = 'redirect' OR redirect_uri_id IS NULL)
);
CREATE INDEX connect_links_tenant_time_idx ON connect_links (tenant_id, created_at DESC, id DESC);

-- A flow started from a link names it (no admin session: the link cookie binds the browser).
ALTER TABLE connect_flows ADD COLUMN link_id uuid REFERENCES connect_links (id) ON DELETE SET NULL;
CREATE INDEX connect_flows_link_idx ON connect_flows (link_id) WHERE link_id IS NOT NULL;

ALTER TABLE connect_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE connect_links FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON connect_links
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));
GRANT SELECT, INSERT, UPDATE, DELETE ON connect_links TO finchgate_app;
