-- Finch credentials, the redirect-URI whitelist, Connect flows, connections, encrypted tokens and the ledger.

-- Versioned Finch application credentials of a tenant. The client secret is an envelope (see src/vault);
-- when a newer version replaces it, the old envelope is erased (crypto-shredded) and its metadata kept,
-- so the ledger can still say which version an attempt used.
CREATE TABLE finch_credentials (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version           integer NOT NULL CHECK (version >= 1),
    client_id         text NOT NULL CHECK (char_length(client_id) BETWEEN 1 AND 255),
    secret_kek_id     text REFERENCES keyring (kek_id),
    secret_envelope   bytea,
    secret_last4      text NOT NULL CHECK (char_length(secret_last4) <= 4),
    created_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    replaced_at       timestamptz,
    UNIQUE (tenant_id, version),
    CONSTRAINT finch_credentials_envelope_complete
        CHECK ((secret_envelope IS NULL) = (secret_kek_id IS NULL)),
    CONSTRAINT finch_credentials_current_has_secret
        CHECK (replaced_at IS NOT NULL OR secret_envelope IS NOT NULL)
);
CREATE INDEX finch_credentials_kek_idx ON finch_credentials (secret_kek_id) WHERE secret_kek_id IS NOT NULL;

ALTER TABLE tenants
    ADD CONSTRAINT tenants_credentials_version_fk
    FOREIGN KEY (id, credentials_version) REFERENCES finch_credentials (tenant_id, version)
    DEFERRABLE INITIALLY DEFERRED;

-- Per-tenant whitelist of redirect URIs, matched byte-for-byte (no normalisation).
CREATE TABLE redirect_uris (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    uri         text NOT NULL CHECK (char_length(uri) BETWEEN 1 AND 2048),
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, uri)
);

-- Finch connections of a tenant, as reported by /auth/token and /introspect.
CREATE TABLE connections (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    finch_connection_id  text NOT NULL CHECK (char_length(finch_connection_id) BETWEEN 1 AND 255),
    provider_id          text NOT NULL,
    company_id           text,
    customer_id          text,
    customer_name        text,
    products             text[] NOT NULL DEFAULT '{}' CHECK (array_position(products, NULL) IS NULL),
    entity_ids           text[] NOT NULL DEFAULT '{}' CHECK (array_position(entity_ids, NULL) IS NULL),
    client_type          text,
    connection_type      text,
    -- active | reauth_required | pending | processing | error | disconnected (from /introspect and our actions)
    status               text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'reauth_required', 'pending', 'processing', 'error', 'disconnected')),
    status_message       text,
    last_status_check_at timestamptz,
    connected_at         timestamptz NOT NULL DEFAULT now(),
    disconnected_at      timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, finch_connection_id),
    UNIQUE (tenant_id, id)
);
CREATE INDEX connections_tenant_status_idx ON connections (tenant_id, status);

-- One row per Connect attempt started. The state is stored only as its SHA-256.
CREATE TABLE connect_flows (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id               uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id                 uuid REFERENCES users (id) ON DELETE SET NULL,
    -- SHA-256 of a random nonce kept in the browser's server-side session.
    session_binding         bytea NOT NULL CHECK (octet_length(session_binding) = 32),
    state_hash              bytea NOT NULL UNIQUE CHECK (octet_length(state_hash) = 32),
    flow                    text NOT NULL CHECK (flow IN ('redirect', 'embedded')),
    redirect_uri_id         uuid REFERENCES redirect_uris (id) ON DELETE SET NULL,
    -- The exact string sent to Finch; the token request must repeat it byte-for-byte.
    redirect_uri            text CHECK (char_length(redirect_uri) <= 2048),
    products                text[] NOT NULL
                            CHECK (cardinality(products) >= 1 AND array_position(products, NULL) IS NULL),
    customer_id             text NOT NULL CHECK (char_length(customer_id) BETWEEN 1 AND 255),
    customer_name           text NOT NULL CHECK (char_length(customer_name) BETWEEN 1 AND 255),
    sandbox                 text CHECK (sandbox IN ('finch', 'provider')),
    minutes_to_expire       integer NOT NULL CHECK (minutes_to_expire BETWEEN 1 AND 129600),
    credentials_version     integer NOT NULL,
    reauth_connection_id    uuid REFERENCES connections (id) ON DELETE SET NULL,
    finch_session_id        text,
    finch_session_created_at timestamptz,
    status                  text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'exchanging', 'completed', 'failed',
                                              'token_not_persisted', 'unknown_outcome', 'expired')),
    failure_category        text,
    connection_id           uuid REFERENCES connections (id) ON DELETE SET NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    expires_at              timestamptz NOT NULL,
    claimed_at              timestamptz,
    finished_at             timestamptz,
    CONSTRAINT connect_flows_redirect_uri_only_for_redirect
        CHECK ((flow = 'redirect') = (redirect_uri IS NOT NULL)),
    CONSTRAINT connect_flows_claimed_when_exchanging
        CHECK (status <> 'exchanging' OR claimed_at IS NOT NULL),
    CHECK (expires_at > created_at)
);
-- Missing-state fallback: the browser session's pending redirect flows of a tenant.
CREATE INDEX connect_flows_binding_idx ON connect_flows (tenant_id, session_binding, status);
-- The reaper: flows stuck in 'exchanging'.
CREATE INDEX connect_flows_exchanging_idx ON connect_flows (claimed_at) WHERE status = 'exchanging';
-- Open-flow gauge and expiry sweep.
CREATE INDEX connect_flows_pending_idx ON connect_flows (expires_at) WHERE status = 'pending';
CREATE INDEX connect_flows_tenant_time_idx ON connect_flows (tenant_id, created_at DESC);

-- The encrypted access token of a connection (envelope, see src/vault). Replaced on reauth;
-- deleted on disconnect, which crypto-shreds the token.
CREATE TABLE connection_tokens (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id       uuid NOT NULL UNIQUE,
    kek_id              text NOT NULL REFERENCES keyring (kek_id),
    envelope            bytea NOT NULL,
    credentials_version integer,
    created_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX connection_tokens_kek_idx ON connection_tokens (kek_id);

-- The ledger: one row per exchange attempt (or per failure before one: the Connect session could not
-- be created, the user denied access). Written before Finch is called; finished rows are immutable
-- except for the operator review fields. Never a code, state, token or secret.
CREATE TABLE exchange_attempts (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    flow_id              uuid REFERENCES connect_flows (id) ON DELETE SET NULL,
    user_id              uuid REFERENCES users (id) ON DELETE SET NULL,
    -- session: creating the Connect session; callback: our checks before the exchange; exchange: /auth/token
    stage                text NOT NULL CHECK (stage IN ('session', 'callback', 'exchange')),
    flow_kind            text CHECK (flow_kind IN ('redirect', 'embedded')),
    is_reauth            boolean NOT NULL DEFAULT false,
    state_missing        boolean NOT NULL DEFAULT false,
    credentials_version  integer,
    callback_received_at timestamptz,
    started_at           timestamptz NOT NULL DEFAULT now(),
    exchange_sent_at     timestamptz,
    answered_at          timestamptz,
    finished_at          timestamptz,
    latency_ms           integer CHECK (latency_ms >= 0),
    outcome              text CHECK (outcome IN ('succeeded', 'failed', 'token_not_persisted', 'unknown_outcome')),
    category             text CHECK (char_length(category) <= 64),
    actor                text CHECK (actor IN ('end_user', 'tenant_admin', 'operator', 'nobody')),
    finch_status         smallint,
    finch_error_name     text CHECK (char_length(finch_error_name) <= 100),
    finch_code           text CHECK (char_length(finch_code) <= 100),
    message              text CHECK (char_length(message) <= 1000),
    shown_to_user        text CHECK (char_length(shown_to_user) <= 1000),
    finch_request_id     text CHECK (char_length(finch_request_id) <= 200),
    provider_id          text CHECK (char_length(provider_id) <= 100),
    finch_connection_id  text CHECK (char_length(finch_connection_id) <= 255),
    connection_id        uuid REFERENCES connections (id) ON DELETE SET NULL,
    review_state         text NOT NULL DEFAULT 'open' CHECK (review_state IN ('open', 'acknowledged', 'resolved')),
    reviewed_by          uuid REFERENCES users (id) ON DELETE SET NULL,
    reviewed_at          timestamptz,
    review_note          text CHECK (char_length(review_note) <= 2000),
    CONSTRAINT exchange_attempts_finished_has_outcome CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
-- Console keyset pagination (newest first), all rows and failures only.
CREATE INDEX exchange_attempts_time_idx ON exchange_attempts (started_at DESC, id DESC);
CREATE INDEX exchange_attempts_failed_time_idx ON exchange_attempts (started_at DESC, id DESC)
    WHERE outcome <> 'succeeded';
CREATE INDEX exchange_attempts_tenant_time_idx ON exchange_attempts (tenant_id, started_at DESC, id DESC);
CREATE INDEX exchange_attempts_category_time_idx ON exchange_attempts (category, started_at DESC, id DESC)
    WHERE outcome <> 'succeeded';
CREATE INDEX exchange_attempts_open_idx ON exchange_attempts (tenant_id, category)
    WHERE outcome <> 'succeeded' AND review_state <> 'resolved';
CREATE INDEX exchange_attempts_flow_idx ON exchange_attempts (flow_id);
CREATE INDEX exchange_attempts_unfinished_idx ON exchange_attempts (started_at) WHERE finished_at IS NULL;

-- Finished ledger rows are immutable (review fields aside) and never deleted; enforced here, not only in code.
CREATE FUNCTION exchange_attempts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.finished_at IS NOT NULL THEN
            RAISE EXCEPTION 'finished exchange attempts are immutable (id %)', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.finished_at IS NOT NULL AND (
           (to_jsonb(NEW) - ARRAY['review_state', 'reviewed_by', 'reviewed_at', 'review_note', 'flow_id', 'user_id', 'connection_id'])
        IS DISTINCT FROM
           (to_jsonb(OLD) - ARRAY['review_state', 'reviewed_by', 'reviewed_at', 'review_note', 'flow_id', 'user_id', 'connection_id'])
    ) THEN
        RAISE EXCEPTION 'finished exchange attempts are immutable (id %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER exchange_attempts_immutable
    BEFORE UPDATE OR DELETE ON exchange_attempts
    FOR EACH ROW EXECUTE FUNCTION exchange_attempts_guard();
