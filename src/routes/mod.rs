//! HTTP only: the one route table. Handlers live one file per page or action and never build SQL.

mod assets;
mod health;
mod login;
mod ops;
mod tenant;

use actix_web::web;

use crate::error::AppError;

/// Every route of finchgate.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(login::root))
        .route("/login", web::get().to(login::form))
        .route("/login", web::post().to(login::submit))
        .route("/logout", web::post().to(login::logout))
        .route("/ops/tenants", web::get().to(ops::tenants::list))
        .route("/t/{slug}/", web::get().to(tenant::home::show))
        .route("/t/{slug}/settings", web::get().to(tenant::settings::show))
        .route(
            "/t/{slug}/settings/finch",
            web::post().to(tenant::settings::finch::save),
        )
        .route(
            "/t/{slug}/settings/finch/test",
            web::post().to(tenant::settings::finch_test::run),
        )
        .route(
            "/t/{slug}/settings/redirect-uris",
            web::post().to(tenant::settings::redirect_uris::add),
        )
        .route(
            "/t/{slug}/settings/redirect-uris/{id}/delete",
            web::post().to(tenant::settings::redirect_uris::delete),
        )
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/static/{file}", web::get().to(assets::serve))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}
