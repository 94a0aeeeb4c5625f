//! Authorization codes: handed out when an employer approves a session, exchanged once for a
//! token.

use chrono::{DateTime, Utc};

use super::{Connection, Flow, Grant, SessionProblem, State, new_id};
use crate::finch::wire::AuthMethod;
use crate::sandbox::data::Company;
use crate::sandbox::error::ApiError;

/// An authorization code handed out by an approved session.
#[derive(Debug, Clone)]
pub(super) struct AuthCode {
    client_id: String,
    session_id: String,
    flow: Flow,
    provider_id: String,
    auth_method: AuthMethod,
    issued_at: DateTime<Utc>,
    used: bool,
}

impl State {
    /// The employer approved: completes the session and hands out a code.
    pub(crate) fn approve(
        &mut self,
        session_id: &str,
        provider_id: &str,
        flow: Flow,
    ) -> Result<String, SessionProblem> {
        let now = self.now();
        let session = self.open_session(session_id)?.clone();
        let auth_method = session
            .auth_method
            .or_else(|| crate::sandbox::providers::find(provider_id).map(|p| p.default_auth))
            .unwrap_or(AuthMethod::Credential);
        let code = new_id();
        self.codes.insert(
            code.clone(),
            AuthCode {
                client_id: session.client_id.clone(),
                session_id: session.id.clone(),
                flow,
                provider_id: provider_id.to_owned(),
                auth_method,
                issued_at: now,
                used: false,
            },
        );
        if let Some(s) = self.sessions.get_mut(session_id) {
            s.completed = true;
        }
        Ok(code)
    }

    /// `POST /auth/token` after client authentication: checks the code and issues a token.
    ///
    /// A rejected code is left as it was (a mistaken `redirect_uri` does not burn it); a
    /// successful exchange marks it used.
    pub(crate) fn exchange(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        code_ttl: chrono::Duration,
    ) -> Result<Grant, ApiError> {
        let now = self.now();
        let record = self
            .codes
            .get(code)
            .ok_or_else(|| ApiError::invalid_grant("the authorization code is invalid"))?;
        if record.client_id != client_id {
            return Err(ApiError::invalid_grant(
                "the authorization code was issued to a different client",
            ));
        }
        if record.used {
            return Err(ApiError::invalid_grant(
                "the authorization code has already been used; codes are single-use",
            ));
        }
        if now - record.issued_at > code_ttl {
            return Err(ApiError::invalid_grant(format!(
                "the authorization code has expired; codes are valid for {}",
                describe(code_ttl)
            )));
        }
        match (&record.flow, redirect_uri) {
            (Flow::Redirect { .. }, None) => {
                return Err(ApiError::invalid_grant(
                    "redirect_uri is required: this code comes from the redirect flow",
                ));
            }
            (
                Flow::Redirect {
                    redirect_uri: expected,
                },
                Some(given),
            ) if expected != given => {
                return Err(ApiError::invalid_grant(
                    "redirect_uri does not match the redirect_uri of the Connect session",
                ));
            }
            (Flow::Embedded, Some(_)) => {
                return Err(ApiError::invalid_grant(
                    "redirect_uri must be omitted: this code comes from the embedded flow",
                ));
            }
            _ => {}
        }
        let record = record.clone();
        let session = self
            .sessions
            .get(&record.session_id)
            .cloned()
            .ok_or_else(|| ApiError::invalid_grant("the authorization code is invalid"))?;

        let connection = match &session.reauth_connection_id {
            Some(id) => {
                let conn = self
                    .connections
                    .get_mut(id)
                    .filter(|c| !c.disconnected)
                    .ok_or_else(|| {
                        ApiError::invalid_grant(
                            "the connection this code reauthenticates has been disconnected",
                        )
                    })?;
                conn.products = session.products.clone();
                conn.auth_method = record.auth_method;
                let snapshot = conn.clone();
                // The new token replaces every earlier token of the connection.
                self.revoke_tokens_of(&snapshot.id);
                snapshot
            }
            None => {
                let company_id = new_id();
                let conn = Connection {
                    id: new_id(),
                    client_id: client_id.to_owned(),
                    customer_id: session.customer_id.clone(),
                    customer_name: session.customer_name.clone(),
                    customer_email: session.customer_email.clone(),
                    provider_id: record.provider_id.clone(),
                    products: session.products.clone(),
                    connection_type: session.connection_type,
                    auth_method: record.auth_method,
                    account_id: new_id(),
                    employee_size: Company::default_size(&company_id),
                    company_id,
                    entity_id: new_id(),
                    manual: session.manual,
                    disconnected: false,
                };
                self.connections.insert(conn.id.clone(), conn.clone());
                conn
            }
        };
        if let Some(c) = self.codes.get_mut(code) {
            c.used = true;
        }
        let access_token = self.issue_token(&connection.id, client_id, now);
        Ok(Grant {
            access_token,
            connection,
        })
    }
}

/// "10 minutes", "90 seconds": a duration for a message.
fn describe(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs % 60 == 0 {
        let minutes = secs / 60;
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    } else {
        format!("{secs} seconds")
    }
}
