//! The callback baseline: a bare actix handler that makes the same emulator call as finchgate's
//! callback (`POST /auth/token` through the production `FinchClient`, same code, credentials and
//! redirect URI rules) and answers 303, with no database, session, ledger or vault.
//!
//! It runs as a child process like `finchgate serve` (this bench binary, re-run with
//! `FINCHGATE_BENCH_ROLE=baseline`), with the same two actix workers, so both sides get the same
//! share of the machine.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::header::LOCATION;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use finchgate::config::FinchSettings;
use finchgate::finch::client::{AppCredentials, FinchClient};
use finchgate::finch::wire::{CreateConnectSessionRequest, Product, SandboxMode, TokenRequest};
use futures_util::StreamExt as _;
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use crate::browser::approve_in_emulator;

pub const ROLE_VAR: &str = "FINCHGATE_BENCH_ROLE";
pub const ROLE: &str = "baseline";

struct Handler {
    finch: FinchClient,
    client_id: String,
    client_secret: SecretString,
    redirect_uri: String,
}

#[derive(serde::Deserialize)]
struct Query {
    code: String,
}

async fn callback(state: web::Data<Handler>, query: web::Query<Query>) -> HttpResponse {
    let request = TokenRequest {
        code: &query.code,
        client_id: &state.client_id,
        client_secret: state.client_secret.expose_secret(),
        redirect_uri: Some(&state.redirect_uri),
    };
    match state.finch.exchange_code(&request).await {
        Ok(_) => HttpResponse::SeeOther()
            .insert_header((LOCATION, "/done"))
            .finish(),
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

/// The child process: serve until killed.
pub fn child_main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baseline server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> anyhow::Result<()> {
    let bind = var("BENCH_BASELINE_BIND")?;
    let api = Url::parse(&var("FINCH_API_URL")?)?;
    let finch = FinchClient::new(&FinchSettings::new(api.clone(), api))?;
    let state = web::Data::new(Handler {
        finch,
        client_id: var("BENCH_CLIENT_ID")?,
        client_secret: SecretString::from(var("BENCH_CLIENT_SECRET")?),
        redirect_uri: format!("http://{bind}/cb"),
    });
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/cb", web::get().to(callback))
                .route("/healthz", web::get().to(HttpResponse::Ok))
        })
        .workers(2)
        .bind(&bind)?
        .run()
        .await
    })?;
    Ok(())
}

/// The baseline server, running as a child process.
pub struct Baseline {
    child: tokio::process::Child,
    pub address: String,
    finch: FinchClient,
    client_id: String,
    client_secret: SecretString,
}

impl Baseline {
    pub async fn start(
        emulator: &Url,
        client_id: &str,
        client_secret: &SecretString,
    ) -> anyhow::Result<Self> {
        let port = crate::stack::free_port()?;
        let bind = format!("127.0.0.1:{port}");
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .env(ROLE_VAR, ROLE)
            .env("BENCH_BASELINE_BIND", &bind)
            .env("FINCH_API_URL", emulator.as_str())
            .env("BENCH_CLIENT_ID", client_id)
            .env("BENCH_CLIENT_SECRET", client_secret.expose_secret())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("start the baseline server")?;
        let baseline = Self {
            child,
            address: format!("http://{bind}"),
            finch: FinchClient::new(&FinchSettings::new(emulator.clone(), emulator.clone()))?,
            client_id: client_id.to_owned(),
            client_secret: client_secret.clone(),
        };
        let http = crate::browser::http_client()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http
            .get(format!("{}/healthz", baseline.address))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the baseline server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(baseline)
    }

    /// `n` callback URLs of the baseline, each with a fresh code from an approved Connect
    /// session of the emulator (the same redirect-flow codes finchgate gets).
    pub async fn callback_urls(
        &self,
        http: &reqwest::Client,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        let redirect_uri = format!("{}/cb", self.address);
        let jobs = (0..n).map(|_| {
            let redirect_uri = redirect_uri.clone();
            async move {
                let session = self
                    .finch
                    .create_connect_session(
                        &AppCredentials {
                            client_id: &self.client_id,
                            client_secret: &self.client_secret,
                        },
                        &CreateConnectSessionRequest {
                            customer_id: "bench".to_owned(),
                            customer_name: "Bench Customer".to_owned(),
                            products: vec![Product::Company, Product::Directory],
                            customer_email: None,
                            redirect_uri: Some(redirect_uri),
                            minutes_to_expire: Some(30),
                            sandbox: Some(SandboxMode::Finch),
                            manual: None,
                            integration: None,
                            recordkeeping: None,
                        },
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("create a Connect session: {e}"))?;
                approve_in_emulator(http, &session.value.connect_url).await
            }
        });
        let results: Vec<anyhow::Result<String>> = futures_util::stream::iter(jobs)
            .buffered(32)
            .collect()
            .await;
        results.into_iter().collect()
    }

    pub async fn stop(mut self) {
        drop(self.child.kill().await);
    }
}
