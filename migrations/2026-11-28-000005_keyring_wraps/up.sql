-- The count of data keys wrapped under each master key moves off the key's one `keyring` row: every
-- sealing transaction updated that row, so sealing commits were serial (docs/benchmarks.md,
-- "Callbacks"). The count now lives in up to 64 shard rows per key; a sealing transaction adds to a
-- random shard, and readers sum them. The retired-key guard stays with the `keyring` row, as a
-- shared `FOR KEY SHARE` lock (see `count_wrap` in src/db/models/keyring.rs).
CREATE TABLE keyring_wraps (
    kek_id      text NOT NULL REFERENCES keyring (kek_id),
    shard       smallint NOT NULL CHECK (shard >= 0 AND shard < 64),
    -- Data keys wrapped under the key, counted on this shard (NIST SP 800-38D random-nonce bound).
    wrap_count  bigint NOT NULL CHECK (wrap_count >= 0),
    PRIMARY KEY (kek_id, shard)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON keyring_wraps TO finchgate_app;

INSERT INTO keyring_wraps (kek_id, shard, wrap_count)
    SELECT kek_id, 0, wrap_count FROM keyring WHERE wrap_count > 0;
ALTER TABLE keyring DROP COLUMN wrap_count;
