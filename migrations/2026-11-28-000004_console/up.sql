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
-- One tenant's failures of one category (a group's drill-down): without it, a BitmapAnd of the
-- tenant and category indexes and a sort.
CREATE INDEX exchange_attempts_tenant_category_time_idx ON exchange_attempts (tenant_id, category, started_at DESC, id DESC)
    WHERE outcome <> 'succeeded';

-- Tenants' health: the 24-hour and 7-day counts per tenant come from an index-only scan of this
-- index over the last 7 days (no heap visits once autovacuum has marked the pages all-visible), and
-- the last successful exchange of each tenant is one index probe.
CREATE INDEX exchange_attempts_health_idx ON exchange_attempts (started_at) INCLUDE (tenant_id, outcome)
    WHERE outcome IS NOT NULL;
CREATE INDEX exchange_attempts_tenant_success_idx ON exchange_attempts (tenant_id, started_at DESC)
    WHERE outcome = 'succeeded';
