DROP TRIGGER exchange_attempts_immutable ON exchange_attempts;
DROP FUNCTION exchange_attempts_guard();
DROP TABLE exchange_attempts;
DROP TABLE connection_tokens;
DROP TABLE connect_flows;
DROP TABLE connections;
DROP TABLE redirect_uris;
ALTER TABLE tenants DROP CONSTRAINT tenants_credentials_version_fk;
DROP TABLE finch_credentials;
