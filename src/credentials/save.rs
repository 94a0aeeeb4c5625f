//! Saving a tenant's Finch settings form: the credentials (a new version only when the secret or
//! client id changes), the sandbox mode and the default products, in one transaction with one
//! audit event naming the changed fields (never their values).

use secrecy::SecretString;
use uuid::Uuid;

use super::{Change, CredentialsError, InputError, plan, store};
use crate::db::models::{audit, credentials, tenants, users};
use crate::db::transaction;
use crate::domain::products;
use crate::domain::sandbox::SandboxSetting;
use crate::error::AppError;
use crate::state::AppState;

/// The settings form as submitted, before any check.
pub struct SettingsForm {
    pub client_id: String,
    pub client_secret: SecretString,
    pub sandbox: String,
    pub products: Vec<String>,
}

/// The form after validation.
pub struct Valid {
    client_id: String,
    secret: Option<SecretString>,
    sandbox: SandboxSetting,
    products: Vec<String>,
}

/// Checks every field and reports every problem at once, as sentences (never what was typed
/// as the secret).
pub fn validate(form: SettingsForm) -> Result<Valid, Vec<String>> {
    let client_id = super::parse_client_id(&form.client_id);
    let secret = super::parse_client_secret(form.client_secret);
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
pub fn describe_field(field: &str) -> &str {
    match field {
        "client_id" => "client ID",
        "client_secret" => "client secret",
        "finch_sandbox" => "sandbox mode",
        "default_products" => "default products",
        other => other,
    }
}

/// What saving changed.
pub enum Saved {
    /// The form cannot be applied to what is stored (e.g. a blank secret for a new client id).
    Refused(InputError),
    /// The audited names of the fields that changed (none: nothing did), and the credentials
    /// version now current.
    Changed {
        fields: Vec<&'static str>,
        version: Option<i32>,
    },
}

/// Who saves: the admin, in their tenant, from a client address.
pub struct Editor<'a> {
    pub tenant: &'a tenants::Tenant,
    pub user_id: Uuid,
    pub ip: Option<String>,
}

/// Applies a validated form.
pub async fn save(state: &AppState, editor: Editor<'_>, valid: Valid) -> Result<Saved, AppError> {
    let tenant = editor.tenant;
    let mut conn = state.db.get().await?;
    transaction(
        &mut conn,
        crate::db::Scope::Tenant(tenant.id),
        async |conn| {
            let current = credentials::current(conn, tenant.id).await?;
            let change = match plan(current.as_ref(), &valid.client_id, valid.secret) {
                Ok(change) => change,
                Err(problem) => return Ok(Saved::Refused(problem)),
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
                let stored = store(
                    conn,
                    &state.vault,
                    tenant.id,
                    &valid.client_id,
                    &secret,
                    Some(editor.user_id),
                )
                .await?;
                version = Some(stored);
            }
            if tenant.finch_sandbox != valid.sandbox.as_str() {
                fields.push("finch_sandbox");
            }
            if tenant.default_products != valid.products {
                fields.push("default_products");
            }
            if fields.contains(&"finch_sandbox") || fields.contains(&"default_products") {
                let sandbox = valid.sandbox.as_str();
                tenants::update_finch_settings(conn, tenant.id, sandbox, &valid.products).await?;
            }
            if !fields.is_empty() {
                let event = audit::Event::new(
                    users::ROLE_TENANT_ADMIN,
                    Some(editor.user_id),
                    "finch_settings.updated",
                )
                .tenant(tenant.id)
                .target("tenant", tenant.id)
                .details(serde_json::json!({ "fields": fields, "credentials_version": version }))
                .ip(editor.ip.clone());
                audit::record(conn, event).await?;
            }
            Ok::<_, CredentialsError>(Saved::Changed { fields, version })
        },
    )
    .await
    .map_err(|e| match e {
        CredentialsError::Db(e) => AppError::from(e),
        other => AppError::internal(other),
    })
}
