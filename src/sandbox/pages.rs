//! HTML pages of the sandbox's Connect flow; askama templates in `templates/sandbox/`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective, ContentType};
use askama::Template;

/// A provider in the page's `<select id="provider">`.
pub(crate) struct ProviderChoice {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) selected: bool,
}

/// A hidden form field carried from the `GET` to the `POST` of `/authorize`.
pub(crate) struct HiddenField {
    pub(crate) name: &'static str,
    pub(crate) value: String,
}

/// The employer's page: pick a provider, approve or deny.
#[derive(Template)]
#[template(path = "sandbox/authorize.html")]
pub(crate) struct AuthorizePage {
    pub(crate) customer_name: String,
    pub(crate) products: Vec<&'static str>,
    pub(crate) providers: Vec<ProviderChoice>,
    pub(crate) fields: Vec<HiddenField>,
    pub(crate) reauth: bool,
    /// The session asked for Finch-generated sandbox data.
    pub(crate) finch_data: bool,
    /// Embedded flow: the origin the Close button reports to.
    pub(crate) close_target: Option<String>,
}

/// A result or error page; in the embedded flow it also posts the outcome to the SDK.
#[derive(Template)]
#[template(path = "sandbox/message.html")]
pub(crate) struct MessagePage {
    pub(crate) title: String,
    pub(crate) message: String,
    pub(crate) post: Option<PostMessage>,
}

/// What the embedded result page sends with `postMessage` (as `finch-auth-message-v2`).
pub(crate) struct PostMessage {
    /// `targetOrigin`: the `sdk_host_url` the SDK gave.
    pub(crate) target_origin: String,
    /// `success` or `error`.
    pub(crate) kind: &'static str,
    pub(crate) code: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) error_type: Option<&'static str>,
    pub(crate) should_close: bool,
}

impl MessagePage {
    /// A page with no message for an SDK.
    pub(crate) fn plain(title: &str, message: impl Into<String>) -> Self {
        Self {
            title: title.to_owned(),
            message: message.into(),
            post: None,
        }
    }
}

/// Renders a page with headers fit for a page whose URL holds a session and a state:
/// no caching, no referrer, and framing only by the embedding origin (embedded flow).
pub(crate) fn render(
    status: StatusCode,
    page: &impl Template,
    frame_origin: Option<&str>,
) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .insert_header(CacheControl(vec![CacheDirective::NoStore]))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                format!("frame-ancestors {}", frame_origin.unwrap_or("'none'")),
            ))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "sandbox page failed to render");
            HttpResponse::InternalServerError()
                .content_type(ContentType::plaintext())
                .body("the sandbox page failed to render")
        }
    }
}
