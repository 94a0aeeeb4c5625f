//! `GET /authorize` (the Connect page) and `POST /authorize` (the employer's decision).
//!
//! Redirect flow: the decision redirects the browser to the session's `redirect_uri` with
//! `code` (or `error=access_denied`) and the `state`. Embedded flow (`app_type=spa`, opened by
//! the Connect SDK in an iframe): the result page posts a `finch-auth-message-v2` message to
//! `sdk_host_url`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use url::Url;

use super::SharedData;
use crate::sandbox::input::{form_pairs, form_value, secrets_equal};
use crate::sandbox::pages::{
    AuthorizePage, HiddenField, MessagePage, PostMessage, ProviderChoice, render,
};
use crate::sandbox::providers::{self, PROVIDERS};
use crate::sandbox::state::{Flow, Session, SessionProblem};

/// How the page was opened.
#[derive(Debug, Clone)]
enum Mode {
    Redirect,
    /// Opened by the Connect SDK; results go to `target_origin` by `postMessage`.
    Embedded {
        target_origin: String,
        sdk_version: Option<String>,
    },
}

/// The Connect parameters, from the query (`GET`) or the hidden form fields (`POST`).
#[derive(Debug, Clone)]
struct ConnectParams {
    session: String,
    state: Option<String>,
    mode: Mode,
}

/// An error page to answer with (built lazily: the rendered page is large).
struct PageError {
    status: StatusCode,
    title: &'static str,
    message: &'static str,
    /// Embedded flow: the SDK's origin, which also hears about the error.
    sdk_origin: Option<String>,
}

impl PageError {
    fn new(status: StatusCode, title: &'static str, message: &'static str) -> Self {
        Self {
            status,
            title,
            message,
            sdk_origin: None,
        }
    }

    /// In the embedded flow the SDK hears about the error too (`validation_error`: Connect
    /// could not open), and the page stays until the employer closes it.
    fn for_mode(mut self, mode: &Mode) -> Self {
        if let Mode::Embedded { target_origin, .. } = mode {
            self.sdk_origin = Some(target_origin.clone());
        }
        self
    }

    fn respond(self) -> HttpResponse {
        let mut page = MessagePage::plain(self.title, self.message);
        if let Some(origin) = &self.sdk_origin {
            page.post = Some(PostMessage {
                target_origin: origin.clone(),
                kind: "error",
                code: None,
                state: None,
                error_message: Some(self.message.to_owned()),
                error_type: Some("validation_error"),
                should_close: false,
            });
        }
        render(self.status, &page, self.sdk_origin.as_deref())
    }
}

impl ConnectParams {
    fn parse(pairs: &[(String, String)]) -> Result<Self, PageError> {
        let session = form_value(pairs, "session").ok_or_else(|| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "Invalid Connect link",
                "This Connect link has no session. Ask the application for a new link.",
            )
        })?;
        let mode = if form_value(pairs, "app_type").as_deref() == Some("spa") {
            let target_origin = form_value(pairs, "sdk_host_url")
                .as_deref()
                .and_then(web_origin)
                .ok_or_else(|| {
                    PageError::new(
                        StatusCode::BAD_REQUEST,
                        "Invalid Connect link",
                        "Embedded Connect needs sdk_host_url: the http(s) origin of the page \
                         that opened it.",
                    )
                })?;
            Mode::Embedded {
                target_origin,
                sdk_version: form_value(pairs, "sdk_version"),
            }
        } else {
            Mode::Redirect
        };
        Ok(Self {
            session,
            state: form_value(pairs, "state"),
            mode,
        })
    }

    /// The fields the form carries to `POST /authorize`.
    fn hidden_fields(&self, form_token: &str) -> Vec<HiddenField> {
        let mut fields = vec![HiddenField {
            name: "session",
            value: self.session.clone(),
        }];
        if let Some(state) = &self.state {
            fields.push(HiddenField {
                name: "state",
                value: state.clone(),
            });
        }
        if let Mode::Embedded {
            target_origin,
            sdk_version,
        } = &self.mode
        {
            fields.push(HiddenField {
                name: "app_type",
                value: "spa".to_owned(),
            });
            fields.push(HiddenField {
                name: "sdk_host_url",
                value: target_origin.clone(),
            });
            fields.push(HiddenField {
                name: "mode",
                value: "employer".to_owned(),
            });
            if let Some(v) = sdk_version {
                fields.push(HiddenField {
                    name: "sdk_version",
                    value: v.clone(),
                });
            }
        }
        fields.push(HiddenField {
            name: "form_token",
            value: form_token.to_owned(),
        });
        fields
    }

    fn frame_origin(&self) -> Option<&str> {
        match &self.mode {
            Mode::Embedded { target_origin, .. } => Some(target_origin),
            Mode::Redirect => None,
        }
    }
}

/// The origin (`scheme://host[:port]`) of an http(s) URL.
fn web_origin(raw: &str) -> Option<String> {
    let url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// The error page for a session that cannot be used.
fn session_problem(problem: SessionProblem) -> PageError {
    match problem {
        SessionProblem::Unknown => PageError::new(
            StatusCode::NOT_FOUND,
            "Connect session not found",
            "This Connect session does not exist. Ask the application for a new link.",
        ),
        SessionProblem::Expired => PageError::new(
            StatusCode::BAD_REQUEST,
            "Connect session expired",
            "This Connect session has expired. Ask the application for a new link.",
        ),
        SessionProblem::Completed => PageError::new(
            StatusCode::BAD_REQUEST,
            "Connect session already used",
            "This Connect session has already been completed. Ask the application for a new \
             link.",
        ),
        SessionProblem::ConnectionDisconnected => PageError::new(
            StatusCode::BAD_REQUEST,
            "Connection disconnected",
            "The connection this session would reauthenticate has been disconnected.",
        ),
    }
}

/// Loads the session and checks it fits the mode.
fn usable_session(shared: &SharedData, params: &ConnectParams) -> Result<Session, PageError> {
    let session = shared
        .with(|s| s.open_session(&params.session).cloned())
        .map_err(|p| session_problem(p).for_mode(&params.mode))?;
    if matches!(params.mode, Mode::Redirect) && session.redirect_uri.is_none() {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "No redirect URI",
            "This Connect session was created without a redirect_uri, so it can only be \
             completed in the embedded flow (the Connect SDK).",
        ));
    }
    Ok(session)
}

/// The providers the employer may pick: the reauthenticated connection's only, else all.
fn provider_choices(session: &Session) -> Vec<ProviderChoice> {
    PROVIDERS
        .iter()
        .filter(|p| {
            session.reauth_connection_id.is_none() || session.provider.as_deref() == Some(p.id)
        })
        .map(|p| ProviderChoice {
            id: p.id,
            name: p.name,
            selected: session.provider.as_deref() == Some(p.id),
        })
        .collect()
}

pub(crate) async fn show(req: HttpRequest, shared: SharedData) -> HttpResponse {
    let pairs = form_pairs(req.query_string().as_bytes());
    let outcome = ConnectParams::parse(&pairs).and_then(|params| {
        let session = usable_session(&shared, &params)?;
        Ok((params, session))
    });
    let (params, session) = match outcome {
        Ok(found) => found,
        Err(e) => return e.respond(),
    };
    let page = AuthorizePage {
        customer_name: session
            .customer_name
            .clone()
            .unwrap_or_else(|| "An application".to_owned()),
        products: session.products.iter().map(|p| p.as_str()).collect(),
        providers: provider_choices(&session),
        fields: params.hidden_fields(&session.form_token),
        reauth: session.reauth_connection_id.is_some(),
        finch_data: session.connection_type == crate::finch::wire::ConnectionType::Finch,
        close_target: params.frame_origin().map(str::to_owned),
    };
    render(StatusCode::OK, &page, params.frame_origin())
}

pub(crate) async fn decide(body: web::Bytes, shared: SharedData) -> HttpResponse {
    let pairs = form_pairs(&body);
    match decide_inner(&pairs, &shared) {
        Ok(response) | Err(response) => response,
    }
}

fn decide_inner(
    pairs: &[(String, String)],
    shared: &SharedData,
) -> Result<HttpResponse, HttpResponse> {
    let params = ConnectParams::parse(pairs).map_err(PageError::respond)?;
    let fail = |e: PageError| e.for_mode(&params.mode).respond();
    let session = usable_session(shared, &params).map_err(PageError::respond)?;

    let form_token = form_value(pairs, "form_token").unwrap_or_default();
    if !secrets_equal(form_token.as_bytes(), session.form_token.as_bytes()) {
        return Err(fail(PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not issued for this Connect session. Open the Connect link again.",
        )));
    }

    match form_value(pairs, "decision").as_deref() {
        Some("approve") => {
            let provider = form_value(pairs, "provider")
                .and_then(|id| providers::find(&id))
                .filter(|p| provider_choices(&session).iter().any(|c| c.id == p.id))
                .ok_or_else(|| {
                    fail(PageError::new(
                        StatusCode::BAD_REQUEST,
                        "Pick a provider",
                        "Choose one of the listed payroll providers.",
                    ))
                })?;
            approve(shared, &params, &session, provider.id)
        }
        Some("deny") => Ok(deny(&params, &session)),
        _ => Err(fail(PageError::new(
            StatusCode::BAD_REQUEST,
            "No decision",
            "Press Approve or Deny.",
        ))),
    }
}

fn approve(
    shared: &SharedData,
    params: &ConnectParams,
    session: &Session,
    provider_id: &str,
) -> Result<HttpResponse, HttpResponse> {
    let flow = match &params.mode {
        Mode::Embedded { .. } => Flow::Embedded,
        // `usable_session` already refused redirect-mode sessions without a redirect_uri.
        Mode::Redirect => Flow::Redirect {
            redirect_uri: session.redirect_uri.clone().ok_or_else(|| {
                PageError::new(
                    StatusCode::BAD_REQUEST,
                    "No redirect URI",
                    "This Connect session has no redirect_uri.",
                )
                .respond()
            })?,
        },
    };
    let code = shared
        .with(|s| s.approve(&session.id, provider_id, flow))
        .map_err(|p| session_problem(p).for_mode(&params.mode).respond())?;
    match &params.mode {
        Mode::Redirect => Ok(redirect_back(
            session,
            &[("code", code.as_str())],
            params.state.as_deref(),
        )),
        Mode::Embedded { target_origin, .. } => {
            let page = MessagePage {
                title: "Connected".to_owned(),
                message: "Your payroll provider is connected. You can close this window."
                    .to_owned(),
                post: Some(PostMessage {
                    target_origin: target_origin.clone(),
                    kind: "success",
                    code: Some(code),
                    state: params.state.clone(),
                    error_message: None,
                    error_type: None,
                    should_close: true,
                }),
            };
            Ok(render(StatusCode::OK, &page, Some(target_origin)))
        }
    }
}

/// The employer refused. Finch documents no redirect parameters for this (finch-api.md §10),
/// so the emulator uses the OAuth 2.0 ones.
fn deny(params: &ConnectParams, session: &Session) -> HttpResponse {
    const DESCRIPTION: &str = "The employer denied access";
    match &params.mode {
        Mode::Redirect => redirect_back(
            session,
            &[
                ("error", "access_denied"),
                ("error_description", DESCRIPTION),
            ],
            params.state.as_deref(),
        ),
        Mode::Embedded { target_origin, .. } => {
            let page = MessagePage {
                title: "Access denied".to_owned(),
                message: "You denied access. You can close this window.".to_owned(),
                post: Some(PostMessage {
                    target_origin: target_origin.clone(),
                    kind: "error",
                    code: None,
                    state: None,
                    error_message: Some(DESCRIPTION.to_owned()),
                    error_type: Some("employer_connection_error"),
                    should_close: true,
                }),
            };
            render(StatusCode::OK, &page, Some(target_origin))
        }
    }
}

/// 303 to the session's `redirect_uri` with `params` (and `state`) added to its query; the
/// URI's own query parameters are kept.
fn redirect_back(session: &Session, params: &[(&str, &str)], state: Option<&str>) -> HttpResponse {
    let target = session
        .redirect_uri
        .as_deref()
        .and_then(|uri| Url::parse(uri).ok());
    let Some(mut target) = target else {
        return PageError::new(
            StatusCode::BAD_REQUEST,
            "No redirect URI",
            "This Connect session has no usable redirect_uri.",
        )
        .respond();
    };
    {
        let mut query = target.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target.as_str()))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
