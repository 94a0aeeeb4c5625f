//! The Finch sandbox emulator: a local stand-in for Finch's API and Connect (in the spirit of
//! stripe-mock), run in-process by tests and `finchgate demo`, or alone as `finchgate sandbox`.
//!
//! It speaks Finch's wire format (`shared/finch-api.md`, types in [`crate::finch::wire`]):
//!
//! | route | what |
//! |---|---|
//! | `POST /connect/sessions`, `POST /connect/sessions/reauthenticate` | Connect sessions (HTTP Basic) |
//! | `GET/POST /authorize` | the Connect page: pick a provider, approve or deny |
//! | `GET /connect.js` | stand-in for Finch's Connect SDK (`window.FinchConnect`) |
//! | `POST /auth/token` | code → access token (body credentials, or Basic when the body has none) |
//! | `GET /introspect`, `POST /disconnect` | Bearer-token endpoints |
//! | `POST /sandbox/connections` | a sandbox connection without Connect (HTTP Basic; `employee_size` sets the company size) |
//! | `GET /employer/company`, `GET /employer/directory`, `POST /employer/individual`, `POST /employer/employment`, `GET /employer/payment`, `POST /employer/pay-statement` | Finch's data API (Bearer; see below) |
//! | `POST/GET /jobs/automated`, `GET /jobs/automated/{job_id}` | `data_sync_all` jobs (Bearer) |
//! | `GET /providers` | the providers, in Finch's shape (no credentials) |
//! | `/_sandbox/faults`, `/_sandbox/requests`, `/_sandbox/apps`, `/_sandbox/limits` | control endpoints, not Finch |
//!
//! Every response carries `Finch-Request-Id`; errors use Finch's body `{code, name, finch_code,
//! message}`; API endpoints require `Finch-API-Version: 2020-09-17`. Codes live
//! [`SandboxConfig::code_ttl`] (10 minutes, as Finch documents) and are single-use; a
//! redirect-flow code needs the session's `redirect_uri` byte for byte, an embedded-flow code
//! must come without one. A rejected exchange leaves the code untouched. Reauthentication keeps
//! the `connection_id` and revokes the connection's earlier tokens; disconnect revokes them all.
//!
//! # Data API
//!
//! The token names the connection; its data is generated from its `company_id` (module `data`), so
//! the same connection answers the same company, people and pay runs every time, and a company
//! of thousands of people costs nothing until a page of it is read. Checks, in order: token
//! (401 `invalid_token_error`), Finch's per-application limit on the endpoint (rolling 60 s;
//! [`RateLimits`], Finch's by default; 429 `finch_application_rl` without `Retry-After`), the
//! endpoint's product (403 `insufficient_scope_error`), then the request (400). Unknown ids in a
//! batch are per-item 404 bodies (`individual_not_found`, `payment_not_found`) in a 200. A
//! `data_sync_all` job is `pending` for 2 s, then `complete`; a second job while one runs
//! returns the running one; a refresh beyond one per hour per connection is a 429 with
//! `retry_at`, `Retry-After` and `x-should-retry: false`.
//!
//! # Faults
//!
//! `POST /_sandbox/faults` (or [`Sandbox::inject`]) queues a [`Fault`]: `{"endpoint":
//! "/auth/token", "kind": "…", "times": 1, …params}`. `endpoint` is optional (any API endpoint
//! the kind applies to); `times` defaults to 1, `0` means until `DELETE /_sandbox/faults`. Each
//! API request takes one use of the first matching fault in FIFO order. Faults never apply to
//! Connect pages or control endpoints, nor to requests rejected for a missing
//! `Finch-API-Version`.
//!
//! | kind | the request is processed? | the client sees |
//! |---|---|---|
//! | `latency {ms}` | yes, after the delay | the normal response, late |
//! | `server_error {status: 500\|502\|503}` | **yes** | a Finch-style 5xx body |
//! | `hang {seconds}` (default 30) | **yes** | nothing for `seconds`, then a dropped connection |
//! | `reset` | **yes** (body read, handler run) | the TCP connection aborted, no HTTP response |
//! | `malformed_json` | **yes** | 200 with the real body cut in half |
//! | `rate_limit {retry_after_seconds}` (default 1) | no | 429 `rate_limit_exceeded_error` / `finch_application_rl`, `Retry-After` |
//! | `wrong_customer_id` | yes | the normal response with a different `customer_id` (`/auth/token`, `/introspect` only) |
//! | `big_body {megabytes}` (default 64) | yes | 200 with a valid JSON body of that size, streamed from one static chunk |
//! | `html_body {status}` (default 200) | yes | an HTML page with that status |
//! | `redirect` | no | `302 Found` to `/_sandbox/redirected` on the emulator |
//! | `set_cookie` | yes | the normal response plus a `Set-Cookie` header |
//!
//! "Processed" means everything happened on Finch's side: on `/auth/token` the code is consumed
//! and the token issued (it shows in [`Sandbox::issued_tokens`]) even though the answer was
//! lost. That is what finchgate must survive: it must never retry such an exchange, and the
//! code is spent anyway. Requests are recorded with their status (`None` when no HTTP response
//! was sent) and the fault that acted on them.
//!
//! Every request is recorded ([`RecordedRequest`]: method, path, status, fault, headers with
//! `authorization` cut to its scheme, the connection a Bearer token named, and the query of data
//! API requests), so tests can assert what reached "Finch".

mod access;
mod data;
mod error;
mod faults;
mod handlers;
mod input;
mod pages;
mod providers;
mod routes;
mod state;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

pub use faults::{Endpoint, Fault, FaultKind, ServerErrorStatus};
pub use state::{IssuedToken, RateLimits, RecordedRequest};

use faults::ConnectionSocket;
use state::Shared;

/// Finch's documented authorization-code lifetime.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(10 * 60);

/// How long a graceful stop waits for open connections. Every sleep of the emulator (latency,
/// hang) ends at once on stop, so in-flight requests finish in milliseconds; what is left is
/// idle keep-alive connections, which actix would otherwise wait out.
const SHUTDOWN_TIMEOUT_SECS: u64 = 1;

/// A Finch application the emulator accepts: a client id and its secret.
#[derive(Debug, Clone)]
pub struct SandboxApp {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl SandboxApp {
    /// Parses `id:secret,id2:secret2`. Errors name the entry (by position and client id) and
    /// what is wrong with it, never the secret.
    pub fn parse_list(s: &str) -> Result<Vec<SandboxApp>, String> {
        const FORMAT: &str = "expected client_id:client_secret[,client_id:client_secret…]";
        if s.trim().is_empty() {
            return Err(format!("the sandbox app list is empty; {FORMAT}"));
        }
        let mut apps: Vec<SandboxApp> = Vec::new();
        for (i, entry) in s.split(',').enumerate() {
            let n = i + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(format!("sandbox app entry {n} is empty; {FORMAT}"));
            }
            let Some((id, secret)) = entry.split_once(':') else {
                return Err(format!(
                    "sandbox app entry {n} has no ':' between client id and secret; {FORMAT}"
                ));
            };
            let id = id.trim();
            if id.is_empty() {
                return Err(format!("sandbox app entry {n} has an empty client id"));
            }
            if secret.is_empty() {
                return Err(format!(
                    "sandbox app entry {n} (client id `{id}`) has an empty secret"
                ));
            }
            if apps.iter().any(|a| a.client_id == id) {
                return Err(format!(
                    "sandbox app entry {n}: client id `{id}` is listed twice"
                ));
            }
            apps.push(SandboxApp {
                client_id: id.to_owned(),
                client_secret: SecretString::from(secret),
            });
        }
        Ok(apps)
    }
}

/// How to run the emulator.
#[derive(Debug)]
pub struct SandboxConfig {
    /// Already bound; port 0 works.
    pub listener: TcpListener,
    /// Base of the API and of `connect_url`; default `http://127.0.0.1:{port}/`.
    pub public_url: Option<Url>,
    pub apps: Vec<SandboxApp>,
    /// Authorization-code lifetime; [`DEFAULT_CODE_TTL`] unless a test wants otherwise.
    pub code_ttl: Duration,
}

impl SandboxConfig {
    /// A config with the default URL and code lifetime.
    pub fn new(listener: TcpListener, apps: Vec<SandboxApp>) -> Self {
        Self {
            listener,
            public_url: None,
            apps,
            code_ttl: DEFAULT_CODE_TTL,
        }
    }
}

/// A running emulator. Dropping it stops the server without waiting; prefer [`Sandbox::stop`].
pub struct Sandbox {
    port: u16,
    shared: web::Data<Shared>,
    handle: ServerHandle,
    task: Option<JoinHandle<std::io::Result<()>>>,
    stopping: watch::Sender<bool>,
}

impl Sandbox {
    /// Spawns the server on the current tokio runtime and returns at once.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        let port = config
            .listener
            .local_addr()
            .context("the sandbox listener has no local address")?
            .port();
        let base_url = base_url(config.public_url, port)?;
        let code_ttl = chrono::Duration::from_std(config.code_ttl)
            .context("the sandbox code_ttl is too large")?;
        let (stopping, stop_rx) = watch::channel(false);
        let shared = web::Data::new(Shared::new(code_ttl, base_url, stop_rx));
        shared.with(|s| {
            for app in config.apps {
                s.register_app(app.client_id, app.client_secret);
            }
        });

        let data = shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(from_fn(faults::api_layer))
                .wrap(from_fn(access::access_layer))
                .configure(routes::configure)
        })
        .on_connect(|conn, extensions| {
            // A duplicate of the socket lets a `reset` fault abort this connection later.
            if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
                match socket2::SockRef::from(tcp).try_clone() {
                    Ok(socket) => {
                        extensions.insert(ConnectionSocket(socket));
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot duplicate a sandbox socket"),
                }
            }
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen(config.listener)
        .context("the sandbox cannot listen")?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Sandbox {
            port,
            shared,
            handle,
            task: Some(task),
            stopping,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Base URL of both the API and Connect (ends in `/`).
    pub fn base_url(&self) -> Url {
        self.shared.base_url().clone()
    }

    /// Registers (or re-keys) an app.
    pub fn register_app(&self, app: SandboxApp) {
        self.shared
            .with(|s| s.register_app(app.client_id, app.client_secret));
    }

    /// Queues a fault, like `POST /_sandbox/faults`. A fault that could never act
    /// (`wrong_customer_id` aimed at an endpoint without a `customer_id`) is logged and dropped.
    pub fn inject(&self, fault: Fault) {
        match fault.validate() {
            Ok(()) => self.shared.with(|s| s.queue_fault(fault)),
            Err(e) => tracing::warn!(error = %e, "sandbox fault ignored"),
        }
    }

    /// Removes every queued fault, like `DELETE /_sandbox/faults`.
    pub fn clear_faults(&self) {
        self.shared.with(|s| s.clear_faults());
    }

    /// The faults still queued, with their remaining `times`.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.with(|s| s.faults())
    }

    /// Sets Finch's per-application rate limits on the data endpoints, like `POST
    /// /_sandbox/limits` (Finch's own limits until changed).
    pub fn set_rate_limits(&self, limits: RateLimits) {
        self.shared.with(|s| s.set_rate_limits(limits));
    }

    /// Every recorded request, oldest first (the last 10 000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.with(|s| s.requests())
    }

    /// How many requests had this method and path (no query).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.shared.with(|s| {
            s.requests()
                .iter()
                .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
                .count()
        })
    }

    /// Every access token issued so far, in order, including those whose response was lost to
    /// a fault.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        self.shared.with(|s| s.issued_tokens())
    }

    /// Shifts the emulator's clock (code and session expiry) by `offset` from wall time.
    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        self.shared.with(|s| s.set_clock_offset(offset));
    }

    /// Stops gracefully: pending latency and hang faults end at once, in-flight requests
    /// complete, idle connections are closed within a second.
    pub async fn stop(mut self) {
        self.stopping.send_replace(true);
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the sandbox server stopped with an error")
                }
                Err(e) => tracing::warn!(error = %e, "the sandbox server task failed"),
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.stopping.send_replace(true);
            // The stop command is sent on the call; nobody needs to await its completion here.
            drop(self.handle.stop(false));
        }
    }
}

/// `finchgate sandbox`: runs the emulator until Ctrl-C or SIGTERM, then stops it cleanly.
pub async fn run(config: SandboxConfig) -> anyhow::Result<()> {
    let client_ids: Vec<String> = config.apps.iter().map(|a| a.client_id.clone()).collect();
    let mut sandbox = Sandbox::start(config).await?;
    tracing::info!(
        url = %sandbox.base_url(),
        apps = %client_ids.join(","),
        "Finch sandbox emulator listening"
    );
    let mut task = sandbox
        .task
        .take()
        .context("the sandbox server task is missing")?;
    tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            tracing::info!("stopping the Finch sandbox emulator");
            sandbox.task = Some(task);
            sandbox.stop().await;
            Ok(())
        }
        ended = &mut task => {
            ended
                .context("the sandbox server task failed")?
                .context("the sandbox server failed")?;
            anyhow::bail!("the sandbox server stopped unexpectedly")
        }
    }
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")
    }
}

/// The public base URL, normalised to end in `/` so relative joins keep its path.
fn base_url(public_url: Option<Url>, port: u16) -> anyhow::Result<Url> {
    let mut url = match public_url {
        Some(url) => url,
        None => Url::parse(&format!("http://127.0.0.1:{port}/"))
            .context("cannot build the sandbox base URL")?,
    };
    if url.cannot_be_a_base() {
        anyhow::bail!("the sandbox public URL `{url}` cannot be a base URL");
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn an_app_list_parses_ids_and_secrets() {
        let apps = SandboxApp::parse_list("one:s1, two:s:2").unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].client_id, "one");
        assert_eq!(apps[1].client_id, "two");
        assert_eq!(apps[1].client_secret.expose_secret(), "s:2");
    }

    #[test]
    fn a_bad_app_list_names_the_entry_but_not_the_secret() {
        let cases = [
            ("", "empty"),
            ("a:b,,c:d", "entry 2 is empty"),
            ("a:b,hunter2", "entry 2 has no ':'"),
            (":hunter2", "empty client id"),
            ("a:", "(client id `a`) has an empty secret"),
            ("a:hunter2,a:other", "`a` is listed twice"),
        ];
        for (input, expected) in cases {
            let err = SandboxApp::parse_list(input).unwrap_err();
            assert!(err.contains(expected), "{input:?} gave {err:?}");
            assert!(!err.contains("hunter2"), "{err:?} leaks a secret");
        }
    }

    #[test]
    fn the_base_url_keeps_a_path_prefix() {
        let url = base_url(Some(Url::parse("https://finch.test/emu?x=1").unwrap()), 1).unwrap();
        assert_eq!(url.as_str(), "https://finch.test/emu/");
        assert_eq!(
            url.join("authorize").unwrap().as_str(),
            "https://finch.test/emu/authorize"
        );
        assert_eq!(
            base_url(None, 8123).unwrap().as_str(),
            "http://127.0.0.1:8123/"
        );
    }
}
