//! `POST /t/{slug}/settings/finch`: saves the Finch client id and secret, the sandbox mode and
//! the default products ([`crate::credentials::save`]).
//!
//! The form has repeated `products` checkboxes, which actix's `Form` (serde_urlencoded) cannot
//! collect, so the body is read as pairs here.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;

use super::back_to_settings;
use crate::credentials::save::{self, Editor, Saved, SettingsForm};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{TenantAdmin, flash};

/// Reads the submitted form; unknown fields (the CSRF token) are ignored.
fn parse(body: &[u8]) -> SettingsForm {
    let mut form = SettingsForm {
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

pub async fn save(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let valid = match save::validate(parse(&body)) {
        Ok(valid) => valid,
        Err(problems) => {
            let message = format!("Nothing was saved. {}", problems.join(" "));
            flash(&session, "error", message)?;
            return Ok(back_to_settings(&admin));
        }
    };
    let editor = Editor {
        tenant: &admin.tenant,
        user_id: admin.user.id,
        ip: crate::web::client_ip(&req),
    };
    match save::save(&state, editor, valid).await? {
        Saved::Refused(problem) => {
            flash(&session, "error", format!("Nothing was saved. {problem}"))?;
        }
        Saved::Changed { fields, .. } if fields.is_empty() => {
            flash(&session, "info", "Nothing changed.")?;
        }
        Saved::Changed { fields, version } => {
            let names: Vec<&str> = fields.iter().map(|f| save::describe_field(f)).collect();
            let version = match (fields.contains(&"client_secret"), version) {
                (true, Some(v)) => format!(" The credentials are now version {v}."),
                _ => String::new(),
            };
            let message = format!("Saved the {}.{version}", names.join(", "));
            flash(&session, "ok", message)?;
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
        let form = parse(
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
        let problems = save::validate(parse(b"client_id=&client_secret=x%0Ay&sandbox=on"))
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().all(|p| !p.contains("x\ny")));
    }
}
