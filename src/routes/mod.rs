//! HTTP only: the one route table. Handlers live one file per page or action and never build SQL.

mod account;
pub(crate) mod api;
mod assets;
mod health;
mod invite;
mod link;
mod login;
mod login_two_factor;
mod ops;
mod reset;
mod tenant;

use actix_web::web;

use crate::error::AppError;

/// Every route of finchgate.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(login::root))
        .route("/login", web::get().to(login::form))
        .route("/login", web::post().to(login::submit))
        .route("/logout", web::post().to(login::logout))
        .route("/invite/{token}", web::get().to(invite::form))
        .route("/invite/{token}", web::post().to(invite::submit))
        .route("/login/two-factor", web::get().to(login_two_factor::form))
        .route(
            "/login/two-factor",
            web::post().to(login_two_factor::submit),
        )
        .route("/reset/{token}", web::get().to(reset::form))
        .route("/reset/{token}", web::post().to(reset::submit))
        .route("/account", web::get().to(account::show))
        .route(
            "/account/password",
            web::post().to(account::password::change),
        )
        .route(
            "/account/sessions/{id}/revoke",
            web::post().to(account::sessions::revoke),
        )
        .route(
            "/account/sessions/revoke-others",
            web::post().to(account::sessions::revoke_others),
        )
        .route(
            "/account/two-factor",
            web::get().to(account::two_factor::show),
        )
        .route(
            "/account/two-factor",
            web::post().to(account::two_factor::submit),
        )
        .route("/ops", web::get().to(ops::exchanges::root))
        .route("/ops/", web::get().to(ops::exchanges::root))
        .route("/ops/exchanges", web::get().to(ops::exchanges::list))
        .route("/ops/exchanges.csv", web::get().to(ops::exchanges::csv))
        .route(
            "/ops/exchanges/resolve",
            web::post().to(ops::exchanges::review::matching),
        )
        .route(
            "/ops/exchanges/{id}",
            web::get().to(ops::exchanges::detail::show),
        )
        .route(
            "/ops/exchanges/{id}/review",
            web::post().to(ops::exchanges::review::one),
        )
        .route("/ops/tenants", web::get().to(ops::tenants::list))
        .route("/ops/tenants", web::post().to(ops::tenants::create))
        .route(
            "/ops/tenants/{slug}",
            web::get().to(ops::tenants::detail::show),
        )
        .route(
            "/ops/tenants/{slug}/invite",
            web::post().to(ops::tenants::invite::create),
        )
        .route(
            "/ops/tenants/{slug}/users/{id}/disable",
            web::post().to(ops::tenants::disable_user::submit),
        )
        .route(
            "/ops/tenants/{slug}/users/{id}/reset-link",
            web::post().to(ops::tenants::user_recovery::reset_link),
        )
        .route(
            "/ops/tenants/{slug}/users/{id}/clear-two-factor",
            web::post().to(ops::tenants::user_recovery::clear_two_factor),
        )
        .route("/c/done", web::get().to(link::done))
        .route("/c/{token}", web::get().to(link::show))
        .route("/c/{token}", web::post().to(link::continue_flow))
        .route("/t/{slug}/", web::get().to(tenant::home::show))
        .route("/t/{slug}/connect", web::get().to(tenant::connect::form))
        .route("/t/{slug}/connect", web::post().to(tenant::connect::submit))
        .route(
            "/t/{slug}/finch/callback",
            web::get().to(tenant::callback::redirect_flow),
        )
        .route(
            "/t/{slug}/finch/callback",
            web::post().to(tenant::callback::embedded_flow),
        )
        .route(
            "/t/{slug}/finch/confirm",
            web::get().to(tenant::callback::confirm_form),
        )
        .route(
            "/t/{slug}/finch/confirm",
            web::post().to(tenant::callback::confirm),
        )
        .route(
            "/t/{slug}/connections/{id}",
            web::get().to(tenant::connections::show),
        )
        .route(
            "/t/{slug}/connections/{id}/refresh",
            web::post().to(tenant::connections::refresh),
        )
        .route(
            "/t/{slug}/connections/{id}/reconnect",
            web::post().to(tenant::connections::reconnect),
        )
        .route(
            "/t/{slug}/connections/{id}/disconnect",
            web::post().to(tenant::connections::disconnect),
        )
        .route("/t/{slug}/links", web::get().to(tenant::links::list))
        .route("/t/{slug}/links", web::post().to(tenant::links::create))
        .route(
            "/t/{slug}/links/{id}/revoke",
            web::post().to(tenant::links::revoke),
        )
        .route("/t/{slug}/attempts", web::get().to(tenant::attempts::list))
        .route(
            "/t/{slug}/attempts/{id}",
            web::get().to(tenant::attempts::show),
        )
        .route(
            "/t/{slug}/flows/{id}",
            web::get().to(tenant::attempts::in_progress),
        )
        .route("/t/{slug}/settings", web::get().to(tenant::settings::show))
        .route(
            "/t/{slug}/settings/finch",
            web::post().to(tenant::settings::finch::save),
        )
        .route(
            "/t/{slug}/settings/finch/test",
            web::post().to(tenant::settings::check_credentials::run),
        )
        .route(
            "/t/{slug}/settings/two-factor",
            web::post().to(tenant::settings::two_factor::save),
        )
        .route(
            "/t/{slug}/settings/redirect-uris",
            web::post().to(tenant::settings::redirect_uris::add),
        )
        .route(
            "/t/{slug}/settings/redirect-uris/{id}/delete",
            web::post().to(tenant::settings::redirect_uris::delete),
        )
        // API keys and the tenant API (issue 14).
        .route(
            "/t/{slug}/settings/api-keys",
            web::get().to(tenant::settings::api_keys::list),
        )
        .route(
            "/t/{slug}/settings/api-keys",
            web::post().to(tenant::settings::api_keys::create),
        )
        .route(
            "/t/{slug}/settings/api-keys/{id}/revoke",
            web::post().to(tenant::settings::api_keys::revoke),
        )
        .route(
            "/api/v1/openapi.json",
            web::get().to(api::openapi::document),
        )
        .route("/api/v1/connections", web::get().to(api::connections::list))
        .route(
            "/api/v1/connections/{id}",
            web::get().to(api::connections::show),
        )
        .route(
            "/api/v1/connections/{id}",
            web::delete().to(api::connections::disconnect),
        )
        .route("/api/v1/attempts", web::get().to(api::attempts::list))
        // Connect links by API (issue 14).
        .route("/api/v1/links", web::post().to(api::links::create))
        .route("/api/v1/links", web::get().to(api::links::list))
        .route("/api/v1/links/{id}", web::get().to(api::links::show))
        .route("/api/v1/links/{id}", web::delete().to(api::links::revoke))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/static/{file}", web::get().to(assets::serve))
        .default_service(web::to(not_found));
}

/// The metrics listener's table (`FINCHGATE_METRICS_BIND`): `/metrics` only. The public listener
/// has no such route, so it answers 404 there.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(health::metrics))
        .default_service(web::to(not_found));
}

async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    use actix_web::ResponseError as _;
    if crate::api::is_api_path(req.path()) {
        crate::api::Problem::not_found().error_response()
    } else {
        AppError::NotFound.error_response()
    }
}
