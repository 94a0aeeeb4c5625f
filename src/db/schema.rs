// @generated automatically by Diesel CLI.

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        name -> Text,
        scopes -> Array<Text>,
        prefix -> Text,
        secret_hash -> Bytea,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Uuid,
        occurred_at -> Timestamptz,
        tenant_id -> Nullable<Uuid>,
        actor_user_id -> Nullable<Uuid>,
        actor_kind -> Text,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        details -> Jsonb,
        ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    connect_flows (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        user_id -> Nullable<Uuid>,
        session_binding -> Bytea,
        state_hash -> Bytea,
        flow -> Text,
        redirect_uri_id -> Nullable<Uuid>,
        redirect_uri -> Nullable<Text>,
        products -> Array<Text>,
        customer_id -> Text,
        customer_name -> Text,
        sandbox -> Nullable<Text>,
        minutes_to_expire -> Int4,
        credentials_version -> Int4,
        reauth_connection_id -> Nullable<Uuid>,
        finch_session_id -> Nullable<Text>,
        finch_session_created_at -> Nullable<Timestamptz>,
        status -> Text,
        failure_category -> Nullable<Text>,
        connection_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        claimed_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        link_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    connect_links (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        token_hash -> Bytea,
        customer_id -> Text,
        customer_name -> Text,
        products -> Array<Text>,
        sandbox -> Nullable<Text>,
        flow -> Text,
        redirect_uri_id -> Nullable<Uuid>,
        return_uri -> Nullable<Text>,
        reconnect_connection_id -> Nullable<Uuid>,
        created_by_user -> Nullable<Uuid>,
        created_by_key -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        opened_at -> Nullable<Timestamptz>,
        current_flow_id -> Nullable<Uuid>,
        completed_at -> Nullable<Timestamptz>,
        connection_id -> Nullable<Uuid>,
        failed_attempt_id -> Nullable<Uuid>,
        revoked_at -> Nullable<Timestamptz>,
        revoked_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    connection_tokens (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        connection_id -> Uuid,
        kek_id -> Text,
        envelope -> Bytea,
        credentials_version -> Nullable<Int4>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    connections (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        finch_connection_id -> Text,
        provider_id -> Text,
        company_id -> Nullable<Text>,
        customer_id -> Nullable<Text>,
        customer_name -> Nullable<Text>,
        products -> Array<Text>,
        entity_ids -> Array<Text>,
        client_type -> Nullable<Text>,
        connection_type -> Nullable<Text>,
        status -> Text,
        status_message -> Nullable<Text>,
        last_status_check_at -> Nullable<Timestamptz>,
        connected_at -> Timestamptz,
        disconnected_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    exchange_attempts (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        flow_id -> Nullable<Uuid>,
        user_id -> Nullable<Uuid>,
        stage -> Text,
        flow_kind -> Nullable<Text>,
        is_reauth -> Bool,
        state_missing -> Bool,
        credentials_version -> Nullable<Int4>,
        callback_received_at -> Nullable<Timestamptz>,
        started_at -> Timestamptz,
        exchange_sent_at -> Nullable<Timestamptz>,
        answered_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        latency_ms -> Nullable<Int4>,
        outcome -> Nullable<Text>,
        category -> Nullable<Text>,
        actor -> Nullable<Text>,
        finch_status -> Nullable<Int2>,
        finch_error_name -> Nullable<Text>,
        finch_code -> Nullable<Text>,
        message -> Nullable<Text>,
        shown_to_user -> Nullable<Text>,
        finch_request_id -> Nullable<Text>,
        provider_id -> Nullable<Text>,
        finch_connection_id -> Nullable<Text>,
        connection_id -> Nullable<Uuid>,
        review_state -> Text,
        reviewed_by -> Nullable<Uuid>,
        reviewed_at -> Nullable<Timestamptz>,
        review_note -> Nullable<Text>,
    }
}

diesel::table! {
    finch_credentials (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        version -> Int4,
        client_id -> Text,
        secret_kek_id -> Nullable<Text>,
        secret_envelope -> Nullable<Bytea>,
        secret_last4 -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        replaced_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    idempotency_keys (api_key_id, idempotency_key) {
        api_key_id -> Uuid,
        idempotency_key -> Text,
        tenant_id -> Uuid,
        request_hash -> Bytea,
        response_status -> Nullable<Int2>,
        response_body -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    invitations (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        user_id -> Uuid,
        token_hash -> Bytea,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    keyring (kek_id) {
        kek_id -> Text,
        check_value -> Bytea,
        created_at -> Timestamptz,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    keyring_wraps (kek_id, shard) {
        kek_id -> Text,
        shard -> Int2,
        wrap_count -> Int8,
    }
}

diesel::table! {
    password_resets (id) {
        id -> Uuid,
        user_id -> Uuid,
        tenant_id -> Nullable<Uuid>,
        token_hash -> Bytea,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    rate_limits (key) {
        key -> Text,
        window_start -> Timestamptz,
        hits -> Int4,
        blocked_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Uuid,
        user_id -> Uuid,
        tenant_id -> Nullable<Uuid>,
        code_hash -> Bytea,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    redirect_uris (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        uri -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        kind -> Text,
    }
}

diesel::table! {
    sessions (key_hash) {
        key_hash -> Bytea,
        user_id -> Nullable<Uuid>,
        state -> Jsonb,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        public_id -> Uuid,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    tenants (id) {
        id -> Uuid,
        slug -> Text,
        name -> Text,
        status -> Text,
        finch_sandbox -> Text,
        default_products -> Array<Text>,
        credentials_version -> Nullable<Int4>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        require_two_factor -> Bool,
    }
}

diesel::table! {
    user_totp (user_id) {
        user_id -> Uuid,
        tenant_id -> Nullable<Uuid>,
        secret_kek_id -> Text,
        secret_envelope -> Bytea,
        created_at -> Timestamptz,
        confirmed_at -> Nullable<Timestamptz>,
        last_step -> Nullable<Int8>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        tenant_id -> Nullable<Uuid>,
        disabled_at -> Nullable<Timestamptz>,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        last_login_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(api_keys -> users (created_by));
diesel::joinable!(audit_events -> tenants (tenant_id));
diesel::joinable!(audit_events -> users (actor_user_id));
diesel::joinable!(connect_flows -> connect_links (link_id));
diesel::joinable!(connect_flows -> redirect_uris (redirect_uri_id));
diesel::joinable!(connect_flows -> tenants (tenant_id));
diesel::joinable!(connect_flows -> users (user_id));
diesel::joinable!(connect_links -> api_keys (created_by_key));
diesel::joinable!(connect_links -> exchange_attempts (failed_attempt_id));
diesel::joinable!(connect_links -> redirect_uris (redirect_uri_id));
diesel::joinable!(connect_links -> tenants (tenant_id));
diesel::joinable!(connection_tokens -> keyring (kek_id));
diesel::joinable!(connection_tokens -> tenants (tenant_id));
diesel::joinable!(connections -> tenants (tenant_id));
diesel::joinable!(exchange_attempts -> connect_flows (flow_id));
diesel::joinable!(exchange_attempts -> connections (connection_id));
diesel::joinable!(exchange_attempts -> tenants (tenant_id));
diesel::joinable!(finch_credentials -> keyring (secret_kek_id));
diesel::joinable!(finch_credentials -> users (created_by));
diesel::joinable!(idempotency_keys -> api_keys (api_key_id));
diesel::joinable!(idempotency_keys -> tenants (tenant_id));
diesel::joinable!(invitations -> tenants (tenant_id));
diesel::joinable!(keyring_wraps -> keyring (kek_id));
diesel::joinable!(password_resets -> tenants (tenant_id));
diesel::joinable!(recovery_codes -> tenants (tenant_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(redirect_uris -> tenants (tenant_id));
diesel::joinable!(redirect_uris -> users (created_by));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(user_totp -> keyring (secret_kek_id));
diesel::joinable!(user_totp -> tenants (tenant_id));
diesel::joinable!(user_totp -> users (user_id));
diesel::joinable!(users -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    audit_events,
    connect_flows,
    connect_links,
    connection_tokens,
    connections,
    exchange_attempts,
    finch_credentials,
    idempotency_keys,
    invitations,
    keyring,
    keyring_wraps,
    password_resets,
    rate_limits,
    recovery_codes,
    redirect_uris,
    sessions,
    tenants,
    user_totp,
    users,
);
