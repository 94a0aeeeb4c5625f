//! Authorization as extractors: a handler's signature states its privilege.
//!
//! `CurrentUser` is anyone signed in; `Operator` is platform staff; `TenantAdmin` is an admin of
//! the tenant named in the path. Anonymous requests are sent to the login page; a signed-in user
//! asking for something outside their reach gets 404, so existence is not revealed. An operator
//! (or an admin of a tenant that requires it) without two-factor sign-in is sent to `/account`
//! by `Operator` and `TenantAdmin` until they enrol; `CurrentUser` (the account pages) lets them in.

use std::future::Future;
use std::pin::Pin;

use actix_session::SessionExt as _;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use uuid::Uuid;

use crate::db::Scope;
use crate::db::models::{tenants, users};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::session::SessionData;

/// A signed-in, enabled user.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub tenant_id: Option<Uuid>,
    /// An operator, or an admin of a tenant that requires it, who has not enrolled in two-factor
    /// sign-in yet: they may reach only their account pages until they have.
    pub must_enrol: bool,
}

impl CurrentUser {
    pub fn is_operator(&self) -> bool {
        self.role == users::ROLE_OPERATOR
    }
}

/// An operator (platform staff).
#[derive(Debug, Clone)]
pub struct Operator(pub CurrentUser);

/// An admin of the tenant named by the `{slug}` path segment.
#[derive(Debug, Clone)]
pub struct TenantAdmin {
    pub user: CurrentUser,
    pub tenant: tenants::Tenant,
}

impl TenantAdmin {
    pub fn scope(&self) -> Scope {
        Scope::Tenant(self.tenant.id)
    }

    /// This admin as the Connect flows know them: plain ids.
    pub fn actor(&self) -> crate::connect::Admin {
        crate::connect::Admin {
            tenant_id: self.tenant.id,
            user_id: self.user.id,
        }
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, AppError>>>>;

async fn current_user(req: &HttpRequest) -> Result<CurrentUser, AppError> {
    let session = req.get_session();
    let Some(user_id) = SessionData(&session).user_id() else {
        return Err(AppError::LoginRequired);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("application state missing")))?;
    let user = crate::db::run(&state.db, Scope::System, async |conn| {
        let Some(user) = users::find(conn, user_id).await? else {
            return Ok(None);
        };
        let must_enrol = crate::auth::two_factor::must_enrol(conn, &user).await?;
        Ok::<_, diesel::result::Error>(Some((user, must_enrol)))
    })
    .await?;
    match user {
        Some((user, must_enrol)) if user.disabled_at.is_none() => Ok(CurrentUser {
            id: user.id,
            email: user.email,
            role: user.role,
            tenant_id: user.tenant_id,
            must_enrol,
        }),
        _ => {
            SessionData(&session).sign_out();
            Err(AppError::LoginRequired)
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { current_user(&req).await })
    }
}

impl FromRequest for Operator {
    type Error = AppError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = current_user(&req).await?;
            if user.is_operator() && user.must_enrol {
                Err(AppError::EnrolmentRequired)
            } else if user.is_operator() {
                Ok(Operator(user))
            } else {
                Err(AppError::NotFound)
            }
        })
    }
}

impl FromRequest for TenantAdmin {
    type Error = AppError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = current_user(&req).await?;
            let slug = req.match_info().get("slug").unwrap_or_default().to_owned();
            let Some(tenant_id) = user
                .tenant_id
                .filter(|_| user.role == users::ROLE_TENANT_ADMIN)
            else {
                return Err(AppError::NotFound);
            };
            if user.must_enrol {
                return Err(AppError::EnrolmentRequired);
            }
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("application state missing")))?;
            // In the user's own tenant scope: another tenant's slug cannot even be seen.
            let tenant = crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
                tenants::find_by_slug(conn, &slug).await
            })
            .await?;
            match tenant {
                Some(tenant) if tenant.id == tenant_id && tenant.status == "active" => {
                    Ok(TenantAdmin { user, tenant })
                }
                _ => Err(AppError::NotFound),
            }
        })
    }
}
