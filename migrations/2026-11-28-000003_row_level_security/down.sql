-- Revokes this database's grants; the cluster-wide role finchgate_app is left in place (other
-- finchgate databases on the server may use it).
DROP POLICY tenant_isolation ON tenants;
ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tenants DISABLE ROW LEVEL SECURITY;

DROP POLICY tenant_isolation ON users;
ALTER TABLE users NO FORCE ROW LEVEL SECURITY;
ALTER TABLE users DISABLE ROW LEVEL SECURITY;

DROP POLICY tenant_isolation ON invitations;
ALTER TABLE invitations NO FORCE ROW LEVEL SECURITY;
ALTER TABLE invitations DISABLE ROW LEVEL SECURITY;

DROP POLICY tenant_isolation ON finch_credentials;
ALTER TABLE finch_credentials NO FORCE ROW LEVEL SECURITY;
ALTER TABLE finch_credentials DISABLE ROW LEVEL SECURITY;

DROP POLICY tenant_isolation ON redirect_uris;
ALTER TABLE redirect_uris NO FORCE ROW LEVEL SECURITY;
ALTER TABLE redirect_uris DISABLE ROW LEVEL SECURITY;

DROP POLICY tenant_isolation ON connections;
ALTER TABLE connections NO FORCE ROW LEVEL SECURITY;
ALTER TABLE connections DISABLE ROW LEVEL SECURITY;

DROP POLICY tenant_isolation ON connect_flows;
ALTER TABLE connect_flows NO FORCE ROW LEVEL SECURITY;
ALTER TABLE connect_flows DISABLE ROW LEVEL SECURITY;

DROP POLICY tenant_isolation ON connection_tokens;
ALTER TABLE connection_tokens NO FORCE ROW LEVEL SECURITY;
ALTER TABLE connection_tokens DISABLE ROW LEVEL SECURITY;

DROP POLICY tenant_isolation ON exchange_attempts;
ALTER TABLE exchange_attempts NO FORCE ROW LEVEL SECURITY;
ALTER TABLE exchange_attempts DISABLE ROW LEVEL SECURITY;

DROP POLICY tenant_isolation ON audit_events;
ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY;

DROP FUNCTION app_tenant_id();
DROP FUNCTION app_scope();
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM finchgate_app;
REVOKE SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public FROM finchgate_app;
REVOKE USAGE ON SCHEMA public FROM finchgate_app;
