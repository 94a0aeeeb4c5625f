//! The emulator's one route table.

use actix_web::web;

use super::handlers::{
    account, assets, authorize, control, employer, jobs, not_found, providers, sandbox_connections,
    sessions, token,
};

/// Registers every route. Each path is one resource whose other methods answer Finch's 404
/// body, like unknown paths.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg
        // Finch API (Finch-API-Version and faults apply: see `faults::api_layer`).
        .service(resource("/connect/sessions").route(web::post().to(sessions::create)))
        .service(
            resource("/connect/sessions/reauthenticate")
                .route(web::post().to(sessions::reauthenticate)),
        )
        .service(resource("/auth/token").route(web::post().to(token::exchange)))
        .service(resource("/introspect").route(web::get().to(account::introspect)))
        .service(resource("/disconnect").route(web::post().to(account::disconnect)))
        .service(
            resource("/sandbox/connections").route(web::post().to(sandbox_connections::create)),
        )
        // Finch's data API (Bearer; products, rate limits and faults apply).
        .service(resource("/employer/company").route(web::get().to(employer::company)))
        .service(resource("/employer/directory").route(web::get().to(employer::directory)))
        .service(resource("/employer/individual").route(web::post().to(employer::individual)))
        .service(resource("/employer/employment").route(web::post().to(employer::employment)))
        .service(resource("/employer/payment").route(web::get().to(employer::payment)))
        .service(resource("/employer/pay-statement").route(web::post().to(employer::pay_statement)))
        .service(
            resource("/jobs/automated")
                .route(web::post().to(jobs::create))
                .route(web::get().to(jobs::list)),
        )
        .service(resource("/jobs/automated/{job_id}").route(web::get().to(jobs::retrieve)))
        .service(resource("/providers").route(web::get().to(providers::list)))
        // Finch Connect.
        .service(
            resource("/authorize")
                .route(web::get().to(authorize::show))
                .route(web::post().to(authorize::decide)),
        )
        .service(resource("/connect.js").route(web::get().to(assets::connect_js)))
        // Control endpoints (not Finch).
        .service(
            resource("/_sandbox/faults")
                .route(web::post().to(control::add_fault))
                .route(web::get().to(control::list_faults))
                .route(web::delete().to(control::clear_faults)),
        )
        .service(resource("/_sandbox/requests").route(web::get().to(control::requests)))
        .service(resource("/_sandbox/apps").route(web::post().to(control::register_app)))
        .service(
            resource("/_sandbox/limits")
                .route(web::get().to(control::limits))
                .route(web::post().to(control::set_limits)),
        )
        .default_service(web::to(not_found));
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(not_found))
}
