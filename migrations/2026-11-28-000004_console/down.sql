DROP INDEX IF EXISTS exchange_attempts_health_idx;
DROP INDEX IF EXISTS exchange_attempts_tenant_success_idx;
DROP INDEX IF EXISTS exchange_attempts_tenant_category_time_idx;
DROP INDEX IF EXISTS exchange_attempts_tenant_failed_time_idx;
DROP INDEX IF EXISTS exchange_attempts_review_time_idx;
DROP INDEX IF EXISTS exchange_attempts_provider_time_idx;
DROP INDEX IF EXISTS exchange_attempts_actor_time_idx;
