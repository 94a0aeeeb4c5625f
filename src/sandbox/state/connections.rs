//! Connections and their access tokens: issued, introspected, revoked.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::{State, new_id};
use crate::finch::wire::{AuthMethod, ConnectionType, Product};
use crate::sandbox::error::ApiError;

/// An access token the emulator issued, so tests can account for every one of them.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub connection_id: String,
    pub client_id: String,
    pub access_token: SecretString,
    pub issued_at: DateTime<Utc>,
    /// Replaced by a reauthentication, or disconnected.
    pub revoked: bool,
}

/// A connection: one employer's link to one provider.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) customer_id: Option<String>,
    pub(crate) customer_name: Option<String>,
    pub(crate) customer_email: Option<String>,
    pub(crate) provider_id: String,
    pub(crate) products: Vec<Product>,
    pub(crate) connection_type: ConnectionType,
    pub(crate) auth_method: AuthMethod,
    pub(crate) account_id: String,
    pub(crate) company_id: String,
    pub(crate) entity_id: String,
    pub(crate) manual: bool,
    pub(crate) disconnected: bool,
    /// How many people its generated company has (see [`crate::sandbox::data`]).
    pub(crate) employee_size: u32,
}

/// An access token's record (the token string is the map key).
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// Finch's id of the token, shown by `/introspect`.
    pub(crate) id: String,
    pub(crate) connection_id: String,
    pub(crate) client_id: String,
    issued_at: DateTime<Utc>,
    revoked: bool,
}

/// A freshly issued token with a snapshot of its connection.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) access_token: String,
    pub(crate) connection: Connection,
}

impl State {
    pub(crate) fn issued_tokens(&self) -> Vec<IssuedToken> {
        self.token_order
            .iter()
            .filter_map(|t| {
                self.tokens.get(t).map(|rec| IssuedToken {
                    connection_id: rec.connection_id.clone(),
                    client_id: rec.client_id.clone(),
                    access_token: SecretString::from(t.as_str()),
                    issued_at: rec.issued_at,
                    revoked: rec.revoked,
                })
            })
            .collect()
    }

    /// A live connection of `client_id` (another app's connection does not exist for it).
    pub(crate) fn connection_of(
        &self,
        client_id: &str,
        connection_id: &str,
    ) -> Option<&Connection> {
        self.connections
            .get(connection_id)
            .filter(|c| c.client_id == client_id)
    }

    /// `POST /sandbox/connections`: a connection and token without Connect.
    pub(crate) fn create_sandbox_connection(
        &mut self,
        client_id: &str,
        provider_id: &str,
        auth_method: AuthMethod,
        products: Vec<Product>,
        employee_size: u32,
    ) -> Grant {
        let now = self.now();
        let connection = Connection {
            id: new_id(),
            client_id: client_id.to_owned(),
            customer_id: None,
            customer_name: None,
            customer_email: None,
            provider_id: provider_id.to_owned(),
            products,
            connection_type: ConnectionType::Finch,
            auth_method,
            account_id: new_id(),
            company_id: new_id(),
            entity_id: new_id(),
            manual: auth_method == AuthMethod::Assisted,
            disconnected: false,
            employee_size,
        };
        self.connections
            .insert(connection.id.clone(), connection.clone());
        let access_token = self.issue_token(&connection.id, client_id, now);
        Grant {
            access_token,
            connection,
        }
    }

    pub(super) fn issue_token(
        &mut self,
        connection_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> String {
        let token = new_id();
        self.tokens.insert(
            token.clone(),
            Token {
                id: new_id(),
                connection_id: connection_id.to_owned(),
                client_id: client_id.to_owned(),
                issued_at: now,
                revoked: false,
            },
        );
        self.token_order.push(token.clone());
        token
    }

    /// A live token and its connection (`invalid_token_error` otherwise).
    pub(crate) fn token(&self, access_token: &str) -> Result<(&Token, &Connection), ApiError> {
        let invalid = || ApiError::invalid_token("the access token is invalid or has been revoked");
        let token = self
            .tokens
            .get(access_token)
            .filter(|t| !t.revoked)
            .ok_or_else(invalid)?;
        let connection = self
            .connections
            .get(&token.connection_id)
            .filter(|c| !c.disconnected)
            .ok_or_else(invalid)?;
        Ok((token, connection))
    }

    /// `POST /disconnect`: revokes every token of the token's connection and ends it.
    pub(crate) fn disconnect(&mut self, access_token: &str) -> Result<(), ApiError> {
        let connection_id = self.token(access_token)?.1.id.clone();
        self.revoke_tokens_of(&connection_id);
        if let Some(c) = self.connections.get_mut(&connection_id) {
            c.disconnected = true;
        }
        Ok(())
    }

    /// Revokes every token of the connection (a reauthentication replaced them, or it ended).
    pub(super) fn revoke_tokens_of(&mut self, connection_id: &str) {
        for t in self.tokens.values_mut() {
            if t.connection_id == connection_id {
                t.revoked = true;
            }
        }
    }
}
