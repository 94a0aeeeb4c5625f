//! `GET /introspect` and `POST /disconnect`: what a token is, and ending its connection.

use actix_web::{HttpRequest, HttpResponse};

use super::SharedData;
use crate::finch::wire::{
    AuthenticationMethod, ClientType, ConnectionStatus, ConnectionStatusType, DisconnectResponse,
    Entity, IntrospectResponse,
};
use crate::sandbox::error::ApiError;
use crate::sandbox::input::bearer_token;

pub(crate) async fn introspect(
    req: HttpRequest,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let access_token = bearer_token(&req)?;
    let body = shared.with(|s| {
        let (token, c) = s.token(&access_token)?;
        let products: Vec<String> = c.products.iter().map(|p| p.as_str().to_owned()).collect();
        let connected = ConnectionStatus {
            status: ConnectionStatusType::Connected,
            message: None,
            last_successful_sync: None,
        };
        Ok::<_, ApiError>(IntrospectResponse {
            id: token.id.clone(),
            client_id: token.client_id.clone(),
            client_type: ClientType::Sandbox,
            connection_id: c.id.clone(),
            connection_status: connected.clone(),
            connection_type: c.connection_type,
            products: products.clone(),
            provider_id: c.provider_id.clone(),
            account_id: Some(c.account_id.clone()),
            company_id: Some(c.company_id.clone()),
            authentication_methods: Some(vec![AuthenticationMethod {
                kind: c.auth_method.into(),
                connection_status: Some(connected),
                products: Some(products),
            }]),
            customer_id: c.customer_id.clone(),
            customer_name: c.customer_name.clone(),
            customer_email: c.customer_email.clone(),
            entities: Some(vec![Entity {
                id: c.entity_id.clone(),
                name: c.customer_name.clone(),
                source_id: None,
                status: ConnectionStatusType::Connected,
            }]),
            manual: Some(c.manual),
            payroll_provider_id: Some(c.provider_id.clone()),
            username: None,
        })
    })?;
    Ok(HttpResponse::Ok().json(body))
}

pub(crate) async fn disconnect(
    req: HttpRequest,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let access_token = bearer_token(&req)?;
    shared.with(|s| s.disconnect(&access_token))?;
    Ok(HttpResponse::Ok().json(DisconnectResponse {
        status: "success".to_owned(),
    }))
}
