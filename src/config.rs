//! Settings from flags and environment, validated at load: a bad value is one clear line, never a panic.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use url::Url;

use crate::vault::Keyring;

/// A configuration problem, naming the variable (or flag) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl LogFormat {
    pub fn parse(raw: Option<&str>) -> Result<Self, ConfigError> {
        match raw.map(str::trim) {
            None | Some("") | Some("pretty") => Ok(Self::Pretty),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(ConfigError::new(
                "FINCHGATE_LOG_FORMAT",
                format!("expected \"pretty\" or \"json\", got {other:?}"),
            )),
        }
    }
}

/// Everything the web server needs, validated. Tests build this directly.
#[derive(Debug)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub bind: SocketAddr,
    /// Where `GET /metrics` is served (`FINCHGATE_METRICS_BIND`), apart from the public listener
    /// (which answers 404 for it); `None`: metrics are not served at all.
    pub metrics_bind: Option<SocketAddr>,
    /// The URL browsers use to reach finchgate (no trailing slash); https in production.
    pub public_url: Url,
    pub keyring: std::sync::Arc<Keyring>,
    /// Key material for signing session cookies (at least 64 bytes).
    pub session_secret: SecretBox<Vec<u8>>,
    pub finch: FinchSettings,
    pub limits: Limits,
    pub retention: Retention,
}

/// Caps on what one admin, or one tenant, may start (issue 13, defect 9): each started flow
/// creates a Finch Connect session with the tenant's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Unfinished (pending) flows one admin may have (`FINCHGATE_PENDING_FLOWS_PER_ADMIN`).
    pub pending_flows_per_admin: i64,
    /// Unfinished (pending) flows one tenant may have (`FINCHGATE_PENDING_FLOWS_PER_TENANT`).
    pub pending_flows_per_tenant: i64,
    /// Requests one API key may send per minute, across all instances
    /// (`FINCHGATE_API_RATE_PER_MINUTE`).
    pub api_requests_per_minute: i32,
}

impl Limits {
    /// The window the start and test rates are counted in.
    pub const WINDOW: chrono::Duration = chrono::Duration::minutes(10);
    /// "Test credentials" per tenant and window (each asks Finch for a session).
    pub const CREDENTIAL_TESTS_PER_TENANT: i32 = 10;

    /// Flows one admin may start per window: three times as many as may be open at once.
    pub fn starts_per_admin(self) -> i32 {
        i32::try_from(self.pending_flows_per_admin.saturating_mul(3)).unwrap_or(i32::MAX)
    }

    /// Flows one tenant may start per window.
    pub fn starts_per_tenant(self) -> i32 {
        i32::try_from(self.pending_flows_per_tenant.saturating_mul(3)).unwrap_or(i32::MAX)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pending_flows_per_admin: 10,
            pending_flows_per_tenant: 100,
            api_requests_per_minute: 600,
        }
    }
}

/// How long finished records are kept before the reaper deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `audit_events` (`FINCHGATE_AUDIT_RETENTION_DAYS`, default 400: a year and a review).
    pub audit_events: chrono::Duration,
    /// Finished `connect_flows` (`FINCHGATE_FLOW_RETENTION_DAYS`, default 90). Their ledger rows
    /// stay (they lose the link to the flow and its timeline's first steps).
    pub finished_flows: chrono::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            audit_events: chrono::Duration::days(400),
            finished_flows: chrono::Duration::days(90),
        }
    }
}

/// Parses a whole number in `range` for `var`, or `default` when unset.
fn parse_count(
    var: &'static str,
    raw: Option<&str>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(default);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            ConfigError::new(
                var,
                format!(
                    "expected a whole number from {} to {}, got {raw:?}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

impl Settings {
    /// Whether cookies must be `Secure` and carry the `__Host-` prefix, and HSTS is sent.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// Where Finch (or the sandbox emulator) lives and how patient we are with it.
#[derive(Debug, Clone)]
pub struct FinchSettings {
    pub api_url: Url,
    pub connect_url: Url,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl FinchSettings {
    pub fn new(api_url: Url, connect_url: Url) -> Self {
        Self {
            api_url,
            connect_url,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The PostgreSQL connection string (it may hold a password, hence secret) and pool size.
#[derive(Debug)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: usize,
}

impl DatabaseSettings {
    /// Parses and checks `DATABASE_URL`: a `postgres://` URL that names a database.
    pub fn parse(raw: Option<&str>) -> Result<Self, ConfigError> {
        const VAR: &str = "DATABASE_URL";
        let raw = required(
            VAR,
            raw,
            "e.g. postgres://postgres@127.0.0.1:5432/finchgate",
        )?;
        let url =
            Url::parse(raw).map_err(|e| ConfigError::new(VAR, format!("not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(ConfigError::new(
                VAR,
                format!("expected a postgres:// URL, got scheme {:?}", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::new(VAR, "the URL names no host"));
        }
        if database_name(&url).is_none() {
            return Err(ConfigError::new(
                VAR,
                "the URL names no database (add /<name> after the host)",
            ));
        }
        Ok(Self {
            url: SecretString::from(raw.to_owned()),
            max_connections: 16,
        })
    }

    /// The database name the URL points at.
    pub fn database_name(&self) -> Option<String> {
        Url::parse(self.url.expose_secret())
            .ok()
            .and_then(|u| database_name(&u))
    }

    /// The same server, another database (e.g. `postgres`, to create this one).
    pub fn with_database(&self, name: &str) -> SecretString {
        match Url::parse(self.url.expose_secret()) {
            Ok(mut url) => {
                url.set_path(&format!("/{name}"));
                SecretString::from(url.to_string())
            }
            Err(_) => self.url.clone(),
        }
    }
}

fn database_name(url: &Url) -> Option<String> {
    let name = url.path().trim_start_matches('/');
    (!name.is_empty() && !name.contains('/')).then(|| name.to_owned())
}

fn required<'a>(
    var: &'static str,
    raw: Option<&'a str>,
    hint: &str,
) -> Result<&'a str, ConfigError> {
    match raw.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ConfigError::new(var, format!("is not set ({hint})"))),
    }
}

/// Parses a listen address such as `127.0.0.1:8080`.
pub fn parse_bind(
    var: &'static str,
    raw: Option<&str>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let raw = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default);
    raw.parse().map_err(|_| {
        ConfigError::new(
            var,
            format!("expected an address like 127.0.0.1:8080, got {raw:?}"),
        )
    })
}

/// Parses a listen address that may be left unset (or empty): `None` then.
pub fn parse_optional_bind(
    var: &'static str,
    raw: Option<&str>,
) -> Result<Option<SocketAddr>, ConfigError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => parse_bind(var, Some(raw), raw).map(Some),
        None => Ok(None),
    }
}

/// Refuses a metrics address that is the public listener's own: metrics must stay off the
/// public port.
pub fn check_metrics_bind(metrics: SocketAddr, bind: SocketAddr) -> Result<(), ConfigError> {
    let overlaps =
        metrics.ip() == bind.ip() || metrics.ip().is_unspecified() || bind.ip().is_unspecified();
    if metrics.port() != 0 && metrics.port() == bind.port() && overlaps {
        return Err(ConfigError::new(
            "FINCHGATE_METRICS_BIND",
            format!(
                "{metrics} is the address of FINCHGATE_BIND; metrics need a listener of their own (e.g. 127.0.0.1:9091)"
            ),
        ));
    }
    Ok(())
}

/// Parses a base URL; https is required unless the host is a loopback address (the sandbox).
pub fn parse_base_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| ConfigError::new(var, format!("not a valid URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(ConfigError::new(
                var,
                "must use https (plain http is accepted only for loopback hosts such as 127.0.0.1)",
            ));
        }
        other => {
            return Err(ConfigError::new(
                var,
                format!("expected an https URL, got scheme {other:?}"),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(var, "the URL names no host"));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ConfigError::new(
            var,
            "must be a plain base URL without query, fragment or credentials",
        ));
    }
    Ok(url)
}

/// Whether a URL's host is a loopback address or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Decodes `FINCHGATE_SESSION_SECRET`: standard base64 of at least 64 random bytes.
pub fn parse_session_secret(raw: Option<&str>) -> Result<SecretBox<Vec<u8>>, ConfigError> {
    const VAR: &str = "FINCHGATE_SESSION_SECRET";
    let raw = required(
        VAR,
        raw,
        "base64 of at least 64 random bytes, e.g. from `openssl rand -base64 64`",
    )?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| ConfigError::new(VAR, "is not valid base64"))?;
    if bytes.len() < 64 {
        return Err(ConfigError::new(
            VAR,
            format!("must decode to at least 64 bytes, got {}", bytes.len()),
        ));
    }
    Ok(SecretBox::new(Box::new(bytes)))
}

/// Parses `FINCHGATE_MASTER_KEYS` and `FINCHGATE_ACTIVE_KEY_ID` into a keyring.
pub fn parse_keyring(
    master_keys: Option<&str>,
    active: Option<&str>,
) -> Result<std::sync::Arc<Keyring>, ConfigError> {
    const VAR: &str = "FINCHGATE_MASTER_KEYS";
    let raw = required(
        VAR,
        master_keys,
        "id:base64-of-32-bytes[,id:base64…]; `finchgate keys generate` makes one",
    )?;
    let active = active.map(str::trim).filter(|s| !s.is_empty());
    Keyring::parse(raw, active)
        .map(std::sync::Arc::new)
        .map_err(|e| {
            let message = e.to_string();
            if message.contains("FINCHGATE_ACTIVE_KEY_ID") {
                ConfigError::new("FINCHGATE_ACTIVE_KEY_ID", message)
            } else {
                ConfigError::new(VAR, message)
            }
        })
}

/// Raw values as they came from flags or the environment, before validation.
#[derive(Debug, Default, Clone)]
pub struct RawServerSettings {
    pub database_url: Option<String>,
    pub bind: Option<String>,
    pub metrics_bind: Option<String>,
    pub public_url: Option<String>,
    pub master_keys: Option<String>,
    pub active_key_id: Option<String>,
    pub session_secret: Option<String>,
    pub finch_api_url: Option<String>,
    pub finch_connect_url: Option<String>,
    pub pending_flows_per_admin: Option<String>,
    pub pending_flows_per_tenant: Option<String>,
    pub audit_retention_days: Option<String>,
    pub flow_retention_days: Option<String>,
    pub api_rate_per_minute: Option<String>,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Where `finchgate demo` serves metrics (`serve` serves none unless `FINCHGATE_METRICS_BIND` is set).
pub const DEFAULT_DEMO_METRICS_BIND: &str = "127.0.0.1:9091";
pub const DEFAULT_FINCH_API_URL: &str = "https://api.tryfinch.com";
pub const DEFAULT_FINCH_CONNECT_URL: &str = "https://connect.tryfinch.com";

impl RawServerSettings {
    /// Validates every value; the first problem found is returned.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let database = DatabaseSettings::parse(self.database_url.as_deref())?;
        let bind = parse_bind("FINCHGATE_BIND", self.bind.as_deref(), DEFAULT_BIND)?;
        let metrics_bind =
            parse_optional_bind("FINCHGATE_METRICS_BIND", self.metrics_bind.as_deref())?;
        if let Some(metrics) = metrics_bind {
            check_metrics_bind(metrics, bind)?;
        }
        let public_url = match self
            .public_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(raw) => parse_base_url("FINCHGATE_PUBLIC_URL", raw)?,
            None if bind.ip().is_loopback() => {
                parse_base_url("FINCHGATE_PUBLIC_URL", &format!("http://{bind}"))?
            }
            None => {
                return Err(ConfigError::new(
                    "FINCHGATE_PUBLIC_URL",
                    "is not set; it is required when FINCHGATE_BIND is not a loopback address (e.g. https://finchgate.example.com)",
                ));
            }
        };
        let keyring = parse_keyring(self.master_keys.as_deref(), self.active_key_id.as_deref())?;
        let session_secret = parse_session_secret(self.session_secret.as_deref())?;
        let api_url = parse_base_url(
            "FINCH_API_URL",
            self.finch_api_url
                .as_deref()
                .unwrap_or(DEFAULT_FINCH_API_URL),
        )?;
        let connect_url = parse_base_url(
            "FINCH_CONNECT_URL",
            self.finch_connect_url
                .as_deref()
                .unwrap_or(DEFAULT_FINCH_CONNECT_URL),
        )?;
        let defaults = (Limits::default(), Retention::default());
        let limits = Limits {
            pending_flows_per_admin: parse_count(
                "FINCHGATE_PENDING_FLOWS_PER_ADMIN",
                self.pending_flows_per_admin.as_deref(),
                defaults.0.pending_flows_per_admin,
                1..=100_000,
            )?,
            pending_flows_per_tenant: parse_count(
                "FINCHGATE_PENDING_FLOWS_PER_TENANT",
                self.pending_flows_per_tenant.as_deref(),
                defaults.0.pending_flows_per_tenant,
                1..=1_000_000,
            )?,
            api_requests_per_minute: i32::try_from(parse_count(
                "FINCHGATE_API_RATE_PER_MINUTE",
                self.api_rate_per_minute.as_deref(),
                i64::from(defaults.0.api_requests_per_minute),
                1..=1_000_000,
            )?)
            .unwrap_or(i32::MAX),
        };
        let days = |var, raw: &Option<String>, default: chrono::Duration| {
            parse_count(var, raw.as_deref(), default.num_days(), 1..=36_500)
                .map(chrono::Duration::days)
        };
        let retention = Retention {
            audit_events: days(
                "FINCHGATE_AUDIT_RETENTION_DAYS",
                &self.audit_retention_days,
                defaults.1.audit_events,
            )?,
            finished_flows: days(
                "FINCHGATE_FLOW_RETENTION_DAYS",
                &self.flow_retention_days,
                defaults.1.finished_flows,
            )?,
        };
        Ok(Settings {
            database,
            bind,
            metrics_bind,
            public_url,
            keyring,
            session_secret,
            finch: FinchSettings::new(api_url, connect_url),
            limits,
            retention,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_without_a_database_name_is_refused() {
        let err = DatabaseSettings::parse(Some("postgres://127.0.0.1:5432")).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        assert!(err.problem.contains("names no database"), "{err}");
    }

    #[test]
    fn a_mysql_url_is_refused_with_its_scheme_named() {
        let err = DatabaseSettings::parse(Some("mysql://h/db")).unwrap_err();
        assert!(err.problem.contains("\"mysql\""), "{err}");
    }

    #[test]
    fn plain_http_is_accepted_only_for_loopback_hosts() {
        assert!(parse_base_url("FINCH_API_URL", "http://127.0.0.1:9000").is_ok());
        assert!(parse_base_url("FINCH_API_URL", "http://localhost:9000").is_ok());
        assert!(parse_base_url("FINCH_API_URL", "http://[::1]:9000").is_ok());
        let err = parse_base_url("FINCH_API_URL", "http://api.tryfinch.com").unwrap_err();
        assert!(err.problem.contains("https"), "{err}");
        assert!(parse_base_url("FINCH_API_URL", "https://user:pw@api.tryfinch.com").is_err());
    }

    #[test]
    fn a_short_session_secret_is_refused_with_its_length() {
        let raw = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let err = parse_session_secret(Some(&raw)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "FINCHGATE_SESSION_SECRET: must decode to at least 64 bytes, got 32"
        );
    }

    #[test]
    fn an_unknown_log_format_is_refused() {
        assert_eq!(LogFormat::parse(Some("json")).unwrap(), LogFormat::Json);
        assert!(LogFormat::parse(Some("xml")).is_err());
    }

    #[test]
    fn metrics_are_served_only_on_an_address_of_their_own_when_one_is_set() {
        let raw = |metrics: Option<&str>| RawServerSettings {
            database_url: Some("postgres://h/db".into()),
            bind: Some("127.0.0.1:8080".into()),
            metrics_bind: metrics.map(str::to_owned),
            master_keys: Some(format!(
                "k1:{}",
                base64::engine::general_purpose::STANDARD.encode([1u8; 32])
            )),
            session_secret: Some(base64::engine::general_purpose::STANDARD.encode([2u8; 64])),
            ..Default::default()
        };
        let unset = raw(None).validate().map(|s| s.metrics_bind);
        assert_eq!(unset.ok(), Some(None), "not served unless set");
        let empty = raw(Some(" ")).validate().map(|s| s.metrics_bind);
        assert_eq!(empty.ok(), Some(None));
        let set = raw(Some("127.0.0.1:9091"))
            .validate()
            .map(|s| s.metrics_bind);
        assert_eq!(set.ok().flatten().map(|a| a.port()), Some(9091));
        for (metrics, problem) in [
            ("9091", "expected an address like 127.0.0.1:8080"),
            ("127.0.0.1:8080", "is the address of FINCHGATE_BIND"),
            ("0.0.0.0:8080", "is the address of FINCHGATE_BIND"),
        ] {
            let err = raw(Some(metrics)).validate().map(|_| ()).unwrap_err();
            assert_eq!(err.var, "FINCHGATE_METRICS_BIND", "{metrics}");
            assert!(err.problem.contains(problem), "{metrics}: {err}");
        }
    }

    #[test]
    fn a_non_loopback_bind_needs_a_public_url() {
        let raw = RawServerSettings {
            database_url: Some("postgres://h/db".into()),
            bind: Some("0.0.0.0:8080".into()),
            ..Default::default()
        };
        let err = raw.validate().unwrap_err();
        assert_eq!(err.var, "FINCHGATE_PUBLIC_URL");
    }
}
