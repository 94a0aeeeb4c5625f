//! `POST /t/{slug}/settings/finch`: saves the Finch client id and secret, the sandbox mode and
//! the default products, in one transaction with one audit event naming the changed fields.
//!
//! The form has repeated `products` checkboxes, which actix's `Form` (serde_urlencoded) cannot
//! collect, so the body is read as pairs here.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;

use super::{audit_event, back_to_settings};
use crate::credentials::{self as creds, Change, CredentialsError, InputError};
use crate::db::models::{audit, credentials, tenants};
use crate::db::transaction;
use crate::domain::products;
use crate::domain::sandbox::SandboxSetting;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{TenantAdmin, flash};

/// The submitted form, unvalidated.
struct FinchForm {
    client_id: String,
    client_secret: SecretString,
    sandbox: String,
    products: Vec<String>,
}

impl FinchForm {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self {
            client_id: String::new(),
            client_secret: SecretString::from(""),
            sandbox: String::new(),
            products: Vec::new(),
        };
        for (name, value) in url::form_urlencoded::parse(body) {
            match &*name {
                "client_id" => form.client_id = value.into_owned(),
                "client_secret" => form.client_secret = SecretString::from(value.into_owned()),
                "sandbox" => form.sandbox = value.into_owned(),
                "products" => form.products.push(value.into_owned()),
                _ => {}
            }
        }
        form
    }
}

/// The form after validation.
struct Valid {
    client_id: String,
    secret: Option<SecretString>,
    sandbox: SandboxSetting,
    products: Vec<String>,
}

/// Checks every field and reports every problem at once, as sentences.
fn validate(form: FinchForm) -> Result<Valid, Vec<String>> {
    let client_id = creds::parse_client_id(&form.client_id);
    let secret = creds::parse_client_secret(form.client_secret);
    let sandbox = SandboxSetting::parse(&form.sandbox);
    let products = products::parse(form.products.iter().map(String::as_str));
    match (client_id, secret, sandbox, products) {
        (Ok(client_id), Ok(secret), Ok(sandbox), Ok(products)) => Ok(Valid {
            client_id,
            secret,
            sandbox,
            products: products::names(&products),
        }),
        (client_id, secret, sandbox, products) => Err([
            client_id.err().map(|e| e.to_string()),
            secret.err().map(|e| e.to_string()),
            sandbox.err().map(|e| e.to_string()),
            products.err().map(|e| e.to_string()),
        ]
        .into_iter()
        .flatten()
        .collect()),
    }
}

/// Human names of the audited field names.
fn describe_field(field: &str) -> &str {
    match field {
        "client_id" => "client ID",
        "client_secret" => "client secret",
        "finch_sandbox" => "sandbox mode",
        "default_products" => "default products",
        other => other,
    }
}

pub async fn save(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let valid = match validate(FinchForm::parse(&body)) {
        Ok(valid) => valid,
        Err(problems) => {
            flash(
                &session,
                "error",
                format!("Nothing was saved. {}", problems.join(" ")),
            )?;
            return Ok(back_to_settings(&admin));
        }
    };
    let tenant = &admin.tenant;
    let mut conn = state.db.get().await?;
    let saved = transaction(&mut conn, admin.scope(), async |conn| {
        let current = credentials::current(conn, tenant.id).await?;
        let change = match creds::plan(current.as_ref(), &valid.client_id, valid.secret) {
            Ok(change) => change,
            Err(problem) => return Ok(Err(problem)),
        };
        let mut fields = Vec::new();
        let mut version = current.as_ref().map(|c| c.version);
        if let Change::NewVersion {
            client_id_changed,
            secret,
        } = change
        {
            if client_id_changed {
                fields.push("client_id");
            }
            fields.push("client_secret");
            version = Some(
                creds::store(
                    conn,
                    &state.vault,
                    tenant.id,
                    &valid.client_id,
                    &secret,
                    Some(admin.user.id),
                )
                .await?,
            );
        }
        if tenant.finch_sandbox != valid.sandbox.as_str() {
            fields.push("finch_sandbox");
        }
        if tenant.default_products != valid.products {
            fields.push("default_products");
        }
        if fields.contains(&"finch_sandbox") || fields.contains(&"default_products") {
            tenants::update_finch_settings(
                conn,
                tenant.id,
                valid.sandbox.as_str(),
                &valid.products,
            )
            .await?;
        }
        if !fields.is_empty() {
            audit::record(
                conn,
                audit_event(
                    &admin,
                    &req,
                    "finch_settings.updated",
                    ("tenant", tenant.id.to_string()),
                    serde_json::json!({ "fields": fields, "credentials_version": version }),
                ),
            )
            .await?;
        }
        Ok::<Result<_, InputError>, CredentialsError>(Ok((fields, version)))
    })
    .await
    .map_err(|e| match e {
        CredentialsError::Db(e) => AppError::from(e),
        other => AppError::internal(other),
    })?;

    match saved {
        Err(problem) => flash(&session, "error", format!("Nothing was saved. {problem}"))?,
        Ok((fields, _)) if fields.is_empty() => flash(&session, "info", "Nothing changed.")?,
        Ok((fields, version)) => {
            let names: Vec<&str> = fields.iter().map(|f| describe_field(f)).collect();
            let version = match (fields.contains(&"client_secret"), version) {
                (true, Some(v)) => format!(" The credentials are now version {v}."),
                _ => String::new(),
            };
            flash(
                &session,
                "ok",
                format!("Saved the {}.{version}", names.join(", ")),
            )?;
        }
    }
    Ok(back_to_settings(&admin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn the_form_collects_repeated_checkboxes_and_decodes_values() {
        let form = FinchForm::parse(
            b"csrf_token=t&client_id=+id%2F1&client_secret=a%26b%3Dc&sandbox=finch\
              &products=company&products=directory",
        );
        assert_eq!(form.client_id, " id/1");
        assert_eq!(form.client_secret.expose_secret(), "a&b=c");
        assert_eq!(form.sandbox, "finch");
        assert_eq!(form.products, ["company", "directory"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = validate(FinchForm::parse(
            b"client_id=&client_secret=x%0Ay&sandbox=on",
        ))
        .err()
        .unwrap_or_default();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().all(|p| !p.contains("x\ny")));
    }
}
