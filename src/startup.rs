//! Wiring: build the state once, bind the listener (port 0 works), assemble the actix app; and,
//! when `FINCHGATE_METRICS_BIND` is set, a second server on its own listener that serves only
//! `/metrics`.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use secrecy::ExposeSecret as _;
use tracing_actix_web::TracingLogger;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::db::Pool;
use crate::state::AppState;
use crate::telemetry::{FinchgateRootSpan, access_log};

/// A built, bound, not yet running finchgate server (and its metrics server, if configured).
pub struct Application {
    port: u16,
    server: Server,
    metrics: Option<(u16, Server)>,
}

/// What tests (and the demo) may swap in; production uses the defaults.
pub struct Overrides {
    pub clock: Arc<dyn Clock>,
    pub workers: usize,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

impl Application {
    /// Binds `settings.bind` and wires the app. The pool connects lazily.
    pub fn build(settings: Settings, pool: Pool, overrides: Overrides) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        Self::build_with_listener(settings, listener, pool, overrides)
    }

    /// Wires the app on an already bound listener (tests bind port 0 first to know the public URL).
    pub fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
        pool: Pool,
        overrides: Overrides,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        // Installing the recorder now makes the first /metrics scrape complete.
        crate::telemetry::metrics_handle();
        let metrics = settings.metrics_bind.map(metrics_server).transpose()?;
        let vault = Arc::new(crate::vault::Vault::new(settings.keyring.clone()));
        let finch = crate::finch::client::FinchClient::new(&settings.finch)?;
        let session_key =
            actix_web::cookie::Key::try_from(settings.session_secret.expose_secret().as_slice())
                .map_err(|e| {
                    anyhow::anyhow!("FINCHGATE_SESSION_SECRET cannot be used as a cookie key: {e}")
                })?;
        let state = web::Data::new(AppState {
            db: pool.clone(),
            vault,
            hasher: crate::auth::password::PasswordHasher::for_this_machine(),
            finch,
            settings: Arc::new(settings),
            clock: overrides.clock.clone(),
            cookie_key: session_key.clone(),
        });
        let https = state.settings.is_https();
        crate::connect::reaper::spawn(
            pool.clone(),
            overrides.clock.clone(),
            state.settings.retention,
            std::time::Duration::from_secs(60),
        );
        let store = crate::auth::session_store::PgSessionStore::new(pool, overrides.clock);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(crate::routes::configure)
                .wrap(from_fn(crate::web::csrf::protect))
                .wrap(session_middleware(
                    store.clone(),
                    session_key.clone(),
                    https,
                ))
                // Before the session is loaded: a refused request touches nothing.
                .wrap(from_fn(crate::web::input::refuse_control_characters))
                // Outside every reader of the body: no read waits past the deadline.
                .wrap(from_fn(crate::web::deadline::body_deadline))
                .wrap(from_fn(crate::web::headers::security_headers))
                .wrap(from_fn(access_log))
                .wrap(TracingLogger::<FinchgateRootSpan>::new())
        })
        .workers(overrides.workers.max(1))
        .client_request_timeout(crate::web::deadline::HEAD_TIMEOUT)
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on, if `settings.metrics_bind` was set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// A handle to stop the server gracefully (the metrics server stops with it).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Some((_, metrics)) = self.metrics else {
            return self.server.await;
        };
        let metrics_handle = metrics.handle();
        let server = async {
            let result = self.server.await;
            metrics_handle.stop(true).await;
            result
        };
        let (result, metrics_result) = futures_util::future::join(server, metrics).await;
        result.and(metrics_result)
    }
}

/// The metrics listener: `/metrics` and nothing else, one worker, no session, no state.
fn metrics_server(bind: std::net::SocketAddr) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(bind)
        .map_err(|e| anyhow::anyhow!("FINCHGATE_METRICS_BIND: cannot listen on {bind}: {e}"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(|| {
        App::new()
            .configure(crate::routes::configure_metrics)
            .wrap(from_fn(crate::web::headers::security_headers))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// Name of the session cookie: `__Host-` prefixed (Secure, host-only, Path=/) under https.
pub fn session_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-finchgate"
    } else {
        "finchgate_session"
    }
}

fn session_middleware(
    store: crate::auth::session_store::PgSessionStore,
    key: actix_web::cookie::Key,
    https: bool,
) -> actix_session::SessionMiddleware<crate::auth::session_store::PgSessionStore> {
    use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
    let idle = actix_web::cookie::time::Duration::seconds(
        crate::auth::session_store::IDLE_TIMEOUT.num_seconds(),
    );
    actix_session::SessionMiddleware::builder(store, key)
        .cookie_name(session_cookie_name(https).to_owned())
        .cookie_secure(https)
        .cookie_http_only(true)
        .cookie_same_site(actix_web::cookie::SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_domain(None)
        .cookie_content_security(CookieContentSecurity::Signed)
        .session_lifecycle(
            BrowserSession::default()
                .state_ttl(idle)
                .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
        )
        .build()
}
