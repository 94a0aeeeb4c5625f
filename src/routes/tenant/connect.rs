//! `GET/POST /t/{slug}/connect`: start Finch Connect (redirect or embedded flow).

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use std::str::FromStr as _;
use uuid::Uuid;

use crate::connect::start::{FlowKind, StartRequest, Started, start};
use crate::db::models::redirect_uris;
use crate::error::AppError;
use crate::finch::wire::{Product, SandboxMode};
use crate::state::AppState;
use crate::web::{PageContext, SessionData, TenantAdmin, render, see_other};

pub const PRODUCTS: &[&str] = &[
    "company",
    "directory",
    "individual",
    "employment",
    "payment",
    "pay_statement",
    "benefits",
    "documents",
    "ssn",
];

#[derive(Template)]
#[template(path = "tenant/connect.html")]
struct ConnectPage {
    page: PageContext,
    products: Vec<(&'static str, bool)>,
    redirect_uris: Vec<redirect_uris::RedirectUriRow>,
    customer_id: String,
    customer_name: String,
    sandbox: String,
}

pub async fn form(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let tenant_id = admin.tenant.id;
    let uris = crate::db::run(&state.db, admin.scope(), async |conn| {
        redirect_uris::list(conn, tenant_id).await
    })
    .await?;
    let defaults = &admin.tenant.default_products;
    render(&ConnectPage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
        products: PRODUCTS
            .iter()
            .map(|p| (*p, defaults.iter().any(|d| d == p)))
            .collect(),
        redirect_uris: uris,
        customer_id: admin.tenant.slug.clone(),
        customer_name: admin.tenant.name.clone(),
        sandbox: admin.tenant.finch_sandbox.clone(),
    })
}

/// The submitted form (checkboxes repeat the `product` field).
pub struct StartForm {
    pub products: Vec<Product>,
    pub flow: FlowKind,
    pub customer_id: String,
    pub customer_name: String,
    pub sandbox: Option<SandboxMode>,
}

impl StartForm {
    pub fn parse(body: &[u8]) -> Result<Self, AppError> {
        let mut products = Vec::new();
        let (mut flow, mut redirect_uri_id, mut customer_id, mut customer_name, mut sandbox) = (
            String::new(),
            None,
            String::new(),
            String::new(),
            String::new(),
        );
        for (name, value) in url::form_urlencoded::parse(body) {
            match name.as_ref() {
                "product" => products
                    .push(Product::from_str(&value).map_err(|_| {
                        AppError::BadRequest(format!("Unknown product {value:?}."))
                    })?),
                "flow" => flow = value.into_owned(),
                "redirect_uri_id" if !value.is_empty() => {
                    redirect_uri_id = Some(Uuid::parse_str(&value).map_err(|_| {
                        AppError::BadRequest(
                            "Choose a redirect URI from this workspace's whitelist.".into(),
                        )
                    })?);
                }
                "customer_id" => customer_id = value.trim().to_owned(),
                "customer_name" => customer_name = value.trim().to_owned(),
                "sandbox" => sandbox = value.into_owned(),
                _ => {}
            }
        }
        if products.is_empty() {
            return Err(AppError::BadRequest("Choose at least one product.".into()));
        }
        products.dedup();
        for (label, value) in [
            ("Customer ID", &customer_id),
            ("Customer name", &customer_name),
        ] {
            if value.is_empty()
                || value.chars().count() > 255
                || value.chars().any(char::is_control)
            {
                return Err(AppError::BadRequest(format!(
                    "{label} must be 1 to 255 printable characters."
                )));
            }
        }
        let flow = match flow.as_str() {
            "redirect" => FlowKind::Redirect {
                redirect_uri_id: redirect_uri_id.ok_or_else(|| {
                    AppError::BadRequest(
                        "The redirect flow needs a redirect URI from the whitelist.".into(),
                    )
                })?,
            },
            "embedded" => FlowKind::Embedded,
            _ => {
                return Err(AppError::BadRequest(
                    "Choose the redirect or the embedded flow.".into(),
                ));
            }
        };
        let sandbox = match sandbox.as_str() {
            "" | "none" => None,
            other => Some(
                SandboxMode::from_str(other)
                    .map_err(|_| AppError::BadRequest("Unknown sandbox mode.".into()))?,
            ),
        };
        Ok(Self {
            products,
            flow,
            customer_id,
            customer_name,
            sandbox,
        })
    }
}

#[derive(Template)]
#[template(path = "tenant/connect_embedded.html")]
struct EmbeddedPage {
    page: PageContext,
    session_id: String,
    state: String,
    connect_script: String,
    callback: String,
}

pub async fn submit(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = StartForm::parse(&body)?;
    let request = StartRequest {
        products: form.products,
        flow: form.flow,
        customer_id: form.customer_id,
        customer_name: form.customer_name,
        sandbox: form.sandbox,
        reauth: None,
    };
    let binding = SessionData(&session).flow_binding()?;
    let started = start(&state, admin.actor().into(), &binding, request).await?;
    respond(&admin, &state, &session, started)
}

/// Turns a started flow into the browser's next step.
pub fn respond(
    admin: &TenantAdmin,
    state: &AppState,
    session: &Session,
    started: Started,
) -> Result<HttpResponse, AppError> {
    match started {
        Started::Redirect { location, .. } => Ok(see_other(location)),
        Started::Failed { attempt_id } => Ok(see_other(format!(
            "/t/{}/attempts/{attempt_id}",
            admin.tenant.slug
        ))),
        Started::Embedded {
            session_id,
            state: flow_state,
            ..
        } => {
            let connect = state
                .settings
                .finch
                .connect_url
                .as_str()
                .trim_end_matches('/')
                .to_owned();
            render(&EmbeddedPage {
                page: PageContext::new(session, &admin.user, Some(&admin.tenant))?,
                session_id,
                state: flow_state,
                connect_script: format!("{connect}/connect.js"),
                callback: format!("/t/{}/finch/callback", admin.tenant.slug),
            })
        }
    }
}
