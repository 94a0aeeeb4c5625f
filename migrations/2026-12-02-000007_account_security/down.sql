DROP TABLE password_resets;
DROP TABLE recovery_codes;
DROP TABLE user_totp;
ALTER TABLE tenants DROP COLUMN require_two_factor;
DROP INDEX sessions_public_id_key;
ALTER TABLE sessions DROP COLUMN user_agent, DROP COLUMN public_id;
