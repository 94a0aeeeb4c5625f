-- Operator console: indexes for its filtered pages and for tenants' health.
-- (Migration 000002 already has the keyset indexes on (started_at DESC, id DESC) for all rows and for
-- failures, and per tenant and per category.) Each was measured on 1,000,000 seeded rows: see
-- docs/benchmarks.md, "Console on 1,000,000 ledger rows".

-- Failures filtered by who must act, by provider, by review state, by tenant: newest first by keyset.
CREATE INDEX exchange_attempts_actor_time_idx ON exchange_attempts (actor, started_at DESC, id DESC)
    WHERE outcome <> 'succeeded';
CREATE INDEX exchange_attempts_provider_time_idx ON exchange_attempts (provider_id, started_at DESC, id DESC)
    WHERE outcome <> 'succeeded';
CREATE INDEX exchange_attempts_review_time_idx ON exchange_attempts (review_state, started_at DESC, id DESC)
    WHERE outcome <> 'succeeded';
CREATE INDEX exchange_attempts_tenant_failed_time_idx ON exchange_attempts (tenant_id, started_at DESC, id DESC)
    WHERE outcome <> 'succeeded';

-- Tenants' health: the last successful exchange of each tenant is one index probe.
CREATE INDEX exchange_attempts_tenant_success_idx ON exchange_attempts (tenant_id, started_at DESC)
    WHERE outcome = 'succeeded';
