ALTER TABLE keyring
    ADD COLUMN wrap_count bigint NOT NULL DEFAULT 0 CHECK (wrap_count >= 0);
UPDATE keyring k
    SET wrap_count = (SELECT coalesce(sum(w.wrap_count), 0) FROM keyring_wraps w WHERE w.kek_id = k.kek_id);
DROP TABLE keyring_wraps;
