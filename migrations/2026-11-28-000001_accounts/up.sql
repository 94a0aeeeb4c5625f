-- Accounts, tenancy, sessions, audit and key metadata.
-- Enumerations are text with CHECK constraints: readable in psql, easy to extend, no type churn.

CREATE TABLE tenants (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug                text NOT NULL UNIQUE
                        CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name                text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    -- Finch Connect sandbox mode used for new Connect sessions: none | finch | provider.
    finch_sandbox       text NOT NULL DEFAULT 'none' CHECK (finch_sandbox IN ('none', 'finch', 'provider')),
    default_products    text[] NOT NULL DEFAULT ARRAY['company', 'directory', 'individual', 'employment']::text[]
                        CHECK (array_position(default_products, NULL) IS NULL),
    -- Version of the active row in finch_credentials; NULL until credentials are saved.
    credentials_version integer,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Stored lower-cased by the application; the unique index makes it case-insensitive regardless.
    email           text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    -- argon2id PHC string; NULL while an invitation is pending.
    password_hash   text,
    role            text NOT NULL CHECK (role IN ('operator', 'tenant_admin')),
    tenant_id       uuid REFERENCES tenants (id) ON DELETE CASCADE,
    disabled_at     timestamptz,
    failed_logins   integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until    timestamptz,
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_role_tenant CHECK ((role = 'operator') = (tenant_id IS NULL))
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE INDEX users_tenant_idx ON users (tenant_id) WHERE tenant_id IS NOT NULL;

-- One-time setup links for new admins. Only the SHA-256 of the token is stored.
CREATE TABLE invitations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX invitations_user_idx ON invitations (user_id);

-- Server-side session store for actix-session. The cookie carries the key; only its SHA-256 is stored.
CREATE TABLE sessions (
    key_hash     bytea PRIMARY KEY CHECK (octet_length(key_hash) = 32),
    user_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    state        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Idle expiry, pushed forward on activity; the absolute cap is created_at + 12 h, enforced in code.
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Fixed-window counters shared by every instance: per-IP login failures, callback abuse, ...
CREATE TABLE rate_limits (
    key           text PRIMARY KEY CHECK (char_length(key) <= 300),
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL CHECK (hits >= 0),
    blocked_until timestamptz
);
CREATE INDEX rate_limits_window_idx ON rate_limits (window_start);

-- Who changed what. Field names, never secret values.
CREATE TABLE audit_events (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    tenant_id     uuid REFERENCES tenants (id) ON DELETE CASCADE,
    actor_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_kind    text NOT NULL CHECK (actor_kind IN ('anonymous', 'operator', 'tenant_admin', 'system', 'cli')),
    action        text NOT NULL CHECK (char_length(action) BETWEEN 1 AND 100),
    target_type   text,
    target_id     text,
    -- Non-secret structured detail, e.g. {"fields": ["client_id", "client_secret"]}.
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip            text,
    request_id    text
);
CREATE INDEX audit_events_tenant_time_idx ON audit_events (tenant_id, occurred_at DESC);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at DESC);
CREATE INDEX audit_events_action_idx ON audit_events (action, occurred_at DESC);

-- Metadata of key-encryption keys. The key material never enters the database.
CREATE TABLE keyring (
    kek_id        text PRIMARY KEY CHECK (kek_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    -- An envelope of a fixed constant sealed under the key: proves at boot that the configured key is the same one.
    check_value   bytea NOT NULL,
    -- Number of data keys wrapped under this key (NIST SP 800-38D random-nonce bound: rotate well before 2^32).
    wrap_count    bigint NOT NULL DEFAULT 0 CHECK (wrap_count >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz
);
