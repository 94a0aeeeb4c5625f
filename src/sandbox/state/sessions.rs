//! Connect sessions: created by the API, shown by the Connect page while they can be completed.

use chrono::{DateTime, Utc};

use super::{State, new_id};
use crate::finch::wire::{AuthMethod, ConnectionType, Product};

/// Which way a Connect session was completed; decides the `redirect_uri` rule at exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Browser redirected to this URI (the session's) with the code.
    Redirect { redirect_uri: String },
    /// Code handed to the embedding page by `postMessage`; no redirect URI involved.
    Embedded,
}

/// A Connect session created by `POST /connect/sessions[/reauthenticate]`.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) customer_id: Option<String>,
    pub(crate) customer_name: Option<String>,
    pub(crate) customer_email: Option<String>,
    pub(crate) products: Vec<Product>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) connection_type: ConnectionType,
    pub(crate) manual: bool,
    /// Preselected provider: `integration.provider`, or the reauthenticated connection's.
    pub(crate) provider: Option<String>,
    pub(crate) auth_method: Option<AuthMethod>,
    /// Set for reauthentication sessions: the code will renew this connection.
    pub(crate) reauth_connection_id: Option<String>,
    pub(crate) expires_at: DateTime<Utc>,
    /// Anti-forgery value the approve/deny form must echo.
    pub(crate) form_token: String,
    /// Approved once; a session yields one code.
    pub(crate) completed: bool,
}

/// Why a session cannot be shown or completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionProblem {
    Unknown,
    Expired,
    Completed,
    ConnectionDisconnected,
}

impl State {
    /// Stores a new session; returns its id.
    pub(crate) fn add_session(&mut self, mut session: Session) -> String {
        session.id = new_id();
        session.form_token = new_id();
        let id = session.id.clone();
        self.sessions.insert(id.clone(), session);
        id
    }

    /// A session that can still be completed.
    pub(crate) fn open_session(&self, id: &str) -> Result<&Session, SessionProblem> {
        let session = self.sessions.get(id).ok_or(SessionProblem::Unknown)?;
        if session.completed {
            return Err(SessionProblem::Completed);
        }
        if self.now() >= session.expires_at {
            return Err(SessionProblem::Expired);
        }
        if let Some(conn) = &session.reauth_connection_id
            && self.connections.get(conn).is_none_or(|c| c.disconnected)
        {
            return Err(SessionProblem::ConnectionDisconnected);
        }
        Ok(session)
    }
}
