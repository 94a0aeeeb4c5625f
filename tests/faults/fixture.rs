//! What both tests of this binary build on: a finchgate server on any database (one or several
//! instances), tenants ready to connect, signing in, starting a redirect flow.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use finchgate::clock::OffsetClock;
use finchgate::config::{DatabaseSettings, FinchSettings, Settings};
use secrecy::{SecretBox, SecretString};
use url::Url;

use crate::helpers::{csrf_token_in, random_bytes, random_master_keys};

/// What every instance of one deployment shares: the database, the master keys, the session
/// secret, the Finch endpoints, the public URL.
pub struct Deployment {
    pub database_url: SecretString,
    pub max_connections: usize,
    pub public_url: Url,
    pub keyring: Arc<finchgate::vault::Keyring>,
    pub session_secret: Vec<u8>,
    pub finch: Url,
    pub request_timeout: Duration,
}

impl Deployment {
    pub fn new(database_url: SecretString, public_url: Url, finch: Url) -> Self {
        Self {
            database_url,
            max_connections: 8,
            public_url,
            keyring: finchgate::config::parse_keyring(Some(&random_master_keys("test1")), None)
                .expect("keyring"),
            session_secret: random_bytes::<64>().to_vec(),
            finch,
            request_timeout: Duration::from_secs(30),
        }
    }

    fn settings(&self, listener: &TcpListener) -> Settings {
        let mut finch = FinchSettings::new(self.finch.clone(), self.finch.clone());
        finch.request_timeout = self.request_timeout;
        finch.connect_timeout = self.request_timeout.min(Duration::from_secs(5));
        Settings {
            database: DatabaseSettings {
                url: self.database_url.clone(),
                max_connections: self.max_connections,
            },
            bind: listener.local_addr().expect("local addr"),
            metrics_bind: None,
            public_url: self.public_url.clone(),
            keyring: self.keyring.clone(),
            session_secret: SecretBox::new(Box::new(self.session_secret.clone())),
            finch,
            // Each admin here drives a flow after another, far faster than a person: the caps
            // on open and started flows (issue 13) are not what this run is about.
            limits: finchgate::config::Limits {
                pending_flows_per_admin: 1_000,
                pending_flows_per_tenant: 100_000,
                api_requests_per_minute: 1_000_000,
            },
            retention: Default::default(),
        }
    }

    pub fn vault(&self) -> finchgate::vault::Vault {
        finchgate::vault::Vault::new(self.keyring.clone())
    }
}

/// One running server process's worth of finchgate (its own pool, workers, reaper).
pub struct Instance {
    pub address: String,
    pub pool: finchgate::db::Pool,
    server: actix_web::dev::ServerHandle,
}

impl Instance {
    /// Starts an instance of `deployment` on `listener`.
    pub fn start(deployment: &Deployment, listener: TcpListener) -> Instance {
        let address = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("local addr").port()
        );
        let settings = deployment.settings(&listener);
        let pool = finchgate::db::pool(&settings.database).expect("pool");
        let app = finchgate::startup::Application::build_with_listener(
            settings,
            listener,
            pool.clone(),
            finchgate::startup::Overrides {
                clock: Arc::new(OffsetClock::default()),
                workers: 2,
            },
        )
        .expect("build the application");
        let server = app.handle();
        tokio::spawn(app.run_until_stopped());
        Instance {
            address,
            pool,
            server,
        }
    }

    pub async fn stop(self) {
        self.server.stop(true).await;
    }
}

/// A browser: its own cookie jar, no automatic redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client")
}

/// A tenant with Finch credentials (registered at the emulator), the deployment's callback URL
/// whitelisted, and an admin who can sign in.
pub struct Tenant {
    pub slug: String,
    pub redirect_uri_id: uuid::Uuid,
    pub email: String,
    pub password: String,
}

pub async fn create_tenant(
    deployment: &Deployment,
    pool: &finchgate::db::Pool,
    sandbox: &finchgate::sandbox::Sandbox,
    slug: &str,
) -> Tenant {
    use finchgate::db::models::{redirect_uris, tenants, users};
    use finchgate::db::{Scope, transaction};
    let email = format!("admin@{slug}.test");
    let password = format!("pw-{}", uuid::Uuid::new_v4());
    let hash = finchgate::auth::password::PasswordHasher::new(2)
        .hash(&SecretString::from(password.clone()))
        .await
        .expect("hash");
    let client_id = format!("client-{slug}-{}", uuid::Uuid::new_v4().simple());
    let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
    sandbox.register_app(finchgate::sandbox::SandboxApp {
        client_id: client_id.clone(),
        client_secret: SecretString::from(secret.clone()),
    });
    let vault = deployment.vault();
    let redirect_uri = finchgate::domain::redirect_uri::callback_url(&deployment.public_url, slug);
    let mut conn = pool.get().await.expect("a connection");
    let redirect_uri_id = transaction(&mut conn, Scope::System, async |conn| {
        finchgate::keys::register_and_check(conn, &vault)
            .await
            .expect("register the master keys");
        let tenant = tenants::insert(
            conn,
            &tenants::NewTenant {
                slug,
                name: slug,
                finch_sandbox: "finch",
            },
        )
        .await?;
        users::insert(
            conn,
            &users::NewUser {
                email: &email,
                password_hash: Some(&hash),
                role: "tenant_admin",
                tenant_id: Some(tenant.id),
            },
        )
        .await?;
        finchgate::credentials::store(
            conn,
            &vault,
            tenant.id,
            &client_id,
            &SecretString::from(secret.clone()),
            None,
        )
        .await
        .expect("store the tenant's credentials");
        redirect_uris::add(conn, tenant.id, &redirect_uri, None).await?;
        let list = redirect_uris::list(conn, tenant.id).await?;
        Ok::<_, diesel::result::Error>(list[0].id)
    })
    .await
    .expect("create the tenant");
    Tenant {
        slug: slug.to_owned(),
        redirect_uri_id,
        email,
        password,
    }
}

/// GET /login, then POST the form: the response to the POST.
pub async fn login(
    client: &reqwest::Client,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = client
        .get(format!("{address}/login"))
        .send()
        .await
        .expect("the login page")
        .text()
        .await
        .expect("its body");
    let csrf = csrf_token_in(&page);
    client
        .post(format!("{address}/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .expect("sign in")
}

/// The connect form's CSRF token: `Err` with the response when the page did not load.
pub async fn connect_csrf(
    client: &reqwest::Client,
    address: &str,
    tenant: &Tenant,
) -> Result<String, Answer> {
    let response = client
        .get(format!("{address}/t/{}/connect", tenant.slug))
        .send()
        .await;
    let answer = Answer::read(response).await;
    if answer.status == 200 && answer.body.contains("name=\"csrf_token\"") {
        Ok(csrf_token_in(&answer.body))
    } else {
        Err(answer)
    }
}

/// POSTs the connect form for a redirect flow with this customer id.
pub async fn start_redirect_flow(
    client: &reqwest::Client,
    address: &str,
    tenant: &Tenant,
    csrf: &str,
    customer_id: &str,
) -> Answer {
    let redirect_id = tenant.redirect_uri_id.to_string();
    let form = [
        ("csrf_token", csrf),
        ("product", "company"),
        ("product", "directory"),
        ("customer_id", customer_id),
        ("customer_name", "Fault Run Customer"),
        ("sandbox", "finch"),
        ("flow", "redirect"),
        ("redirect_uri_id", redirect_id.as_str()),
    ];
    let response = client
        .post(format!("{address}/t/{}/connect", tenant.slug))
        .form(&form)
        .send()
        .await;
    Answer::read(response).await
}

/// A response, read whole; a request that got no HTTP response at all has status 0.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub transport_error: Option<String>,
}

impl Answer {
    pub async fn read(response: reqwest::Result<reqwest::Response>) -> Answer {
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match response.text().await {
                    Ok(body) => Answer {
                        status,
                        location,
                        body,
                        transport_error: None,
                    },
                    Err(e) => Answer {
                        status,
                        location,
                        body: String::new(),
                        transport_error: Some(e.to_string()),
                    },
                }
            }
            Err(e) => Answer {
                status: 0,
                location: None,
                body: String::new(),
                transport_error: Some(e.to_string()),
            },
        }
    }

    /// The product's error page (not a bare status from a middleware or a panic).
    pub fn is_error_page(&self) -> bool {
        self.body.contains("<section class=\"card error\">")
            && self
                .body
                .contains(&format!("<p class=\"status\">Error {}</p>", self.status))
    }

    /// Acceptable under faults: a redirect, a page, or a 4xx/503 rendered with the error page.
    /// Never a 500 (rendered or not), never a bare error, never a dropped connection.
    pub fn problem(&self) -> Option<String> {
        if let Some(e) = &self.transport_error {
            return Some(format!("no complete response ({}): {e}", self.status));
        }
        match self.status {
            200 | 303 => None,
            400..=499 | 503 if self.is_error_page() => None,
            status => Some(format!(
                "{status} {}",
                self.body.chars().take(200).collect::<String>()
            )),
        }
    }
}
