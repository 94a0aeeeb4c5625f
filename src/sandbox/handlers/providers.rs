//! `GET /providers`: the emulator's providers in Finch's shape. Finch's SDK calls it without
//! credentials, so none are needed.

use actix_web::HttpResponse;
use serde::Serialize;

use crate::finch::wire::AuthenticationMethodType;
use crate::sandbox::providers::PROVIDERS;

/// The products whose endpoints the emulator serves.
const PRODUCTS: [&str; 6] = [
    "company",
    "directory",
    "individual",
    "employment",
    "payment",
    "pay_statement",
];

#[derive(Serialize)]
struct AuthenticationMethod {
    #[serde(rename = "type")]
    kind: AuthenticationMethodType,
    benefits_support: Option<()>,
    supported_fields: Option<()>,
}

#[derive(Serialize)]
struct ProviderBody {
    id: &'static str,
    display_name: &'static str,
    products: [&'static str; 6],
    authentication_methods: Vec<AuthenticationMethod>,
    beta: bool,
    icon: Option<String>,
    logo: Option<String>,
    manual: bool,
    mfa_required: bool,
    primary_color: Option<String>,
}

pub(crate) async fn list() -> HttpResponse {
    let body: Vec<ProviderBody> = PROVIDERS
        .iter()
        .map(|p| ProviderBody {
            id: p.id,
            display_name: p.name,
            products: PRODUCTS,
            authentication_methods: vec![AuthenticationMethod {
                kind: p.default_auth.into(),
                benefits_support: None,
                supported_fields: None,
            }],
            beta: false,
            icon: None,
            logo: None,
            manual: false,
            mfa_required: false,
            primary_color: None,
        })
        .collect();
    HttpResponse::Ok().json(body)
}
