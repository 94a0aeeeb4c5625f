-- Accounts (issue 13): session public ids, two-factor sign-in (TOTP), recovery codes, password
-- reset links, and the tenant setting that requires two-factor of its admins.

-- A random public id per session, for the account page's "sign out" buttons: the session key
-- (and its hash) never appears in a page or URL. Browser summary and last activity for the list.
ALTER TABLE sessions
    ADD COLUMN public_id  uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN user_agent text CHECK (char_length(user_agent) <= 100);
CREATE UNIQUE INDEX sessions_public_id_key ON sessions (public_id);

ALTER TABLE tenants
    ADD COLUMN require_two_factor boolean NOT NULL DEFAULT false;

-- One TOTP secret per user (RFC 6238, SHA-1, 6 digits, 30 s). Sealed in the vault, bound to the
-- user (purpose totp-secret, row = user id). confirmed_at is NULL while enrolment is pending.
-- last_step is the last accepted time step: a code is accepted once (no replay within its step).
CREATE TABLE user_totp (
    user_id          uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- NULL for operators; the user's tenant for admins (row-level security).
    tenant_id        uuid REFERENCES tenants (id) ON DELETE CASCADE,
    secret_kek_id    text NOT NULL REFERENCES keyring (kek_id),
    secret_envelope  bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    confirmed_at     timestamptz,
    last_step        bigint
);
CREATE INDEX user_totp_kek_idx ON user_totp (secret_kek_id);

-- Ten one-time recovery codes per enrolment. Only the SHA-256 of each is stored: a code carries
-- 80 random bits, so a fast hash cannot be reversed by guessing (unlike a password).
CREATE TABLE recovery_codes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   uuid REFERENCES tenants (id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL UNIQUE CHECK (octet_length(code_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);
CREATE INDEX recovery_codes_user_idx ON recovery_codes (user_id);

-- One-time password reset links issued by an operator (24 h). Only the SHA-256 of the token.
CREATE TABLE password_resets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   uuid REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);

-- Row-level security as for every tenant-owned table (migration 000003). Operators' rows have
-- no tenant: only the operator and system scopes see them.
ALTER TABLE user_totp ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_totp FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_totp
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON recovery_codes
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE password_resets ENABLE ROW LEVEL SECURITY;
ALTER TABLE password_resets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON password_resets
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

GRANT SELECT, INSERT, UPDATE, DELETE ON user_totp, recovery_codes, password_resets TO finchgate_app;
