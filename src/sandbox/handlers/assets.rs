//! `GET /connect.js`: the stand-in for Finch's Connect SDK, embedded in the binary.

use actix_web::HttpResponse;
use actix_web::http::header::{CacheControl, CacheDirective, ContentType};

const CONNECT_JS: &str = include_str!("../../../static/sandbox/connect.js");

pub(crate) async fn connect_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType(mime_javascript()))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .body(CONNECT_JS)
}

fn mime_javascript() -> actix_web::mime::Mime {
    actix_web::mime::APPLICATION_JAVASCRIPT_UTF_8
}
