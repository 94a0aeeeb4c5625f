DROP INDEX IF EXISTS connect_flows_link_idx;
ALTER TABLE connect_flows DROP COLUMN link_id;
DROP TABLE connect_links;
DELETE FROM redirect_uris WHERE kind = 'return';
ALTER TABLE redirect_uris DROP CONSTRAINT redirect_uris_tenant_id_kind_uri_key;
ALTER TABLE redirect_uris ADD CONSTRAINT redirect_uris_tenant_id_uri_key UNIQUE (tenant_id, uri);
ALTER TABLE redirect_uris DROP COLUMN kind;
