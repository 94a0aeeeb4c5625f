-- Tenant isolation in the database, as defence in depth behind the tenant-scoped queries.
--
-- The application's pool connections switch to the NOLOGIN role finchgate_app (no superuser, no
-- BYPASSRLS), and every transaction declares its scope with set_config(..., true):
--   app.scope = 'tenant' with app.tenant_id = <uuid>   a tenant admin's request
--   app.scope = 'operator'                             the operator console (all tenants, no tokens)
--   app.scope = 'system'                               sign-in, sessions, the reaper, CLI commands
-- With no scope set, every tenant-owned table looks empty. Row-level security is forced, so the
-- table owner is subject to it too (superusers still bypass it: the app never runs as one).
-- The role is cluster-wide and shared by every finchgate database on the server; down.sql
-- revokes this database's grants but does not drop it.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'finchgate_app') THEN
        CREATE ROLE finchgate_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    -- The role that runs migrations (and owns the pool's logins) must be able to SET ROLE.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'finchgate_app', 'MEMBER') THEN
        EXECUTE format('GRANT finchgate_app TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO finchgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO finchgate_app;
REVOKE INSERT, UPDATE, DELETE ON __diesel_schema_migrations FROM finchgate_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO finchgate_app;

CREATE FUNCTION app_scope() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT coalesce(current_setting('app.scope', true), '') $$;
CREATE FUNCTION app_tenant_id() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND id = app_tenant_id()));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE finch_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE finch_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON finch_credentials
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE redirect_uris ENABLE ROW LEVEL SECURITY;
ALTER TABLE redirect_uris FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON redirect_uris
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON connections
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE connect_flows ENABLE ROW LEVEL SECURITY;
ALTER TABLE connect_flows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON connect_flows
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

-- Access tokens: the operator scope never sees them, not even encrypted.
ALTER TABLE connection_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE connection_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON connection_tokens
    USING (app_scope() IN ('system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE exchange_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE exchange_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON exchange_attempts
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
    USING (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()))
    WITH CHECK (app_scope() IN ('operator', 'system') OR (app_scope() = 'tenant' AND tenant_id = app_tenant_id()));
