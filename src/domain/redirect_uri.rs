//! `RedirectUri`: an entry of a tenant's redirect-URI whitelist, kept exactly as typed.
//!
//! Finch (and RFC 9700 §2.1) compare redirect URIs as exact strings, and the token request must
//! repeat the one used for Connect byte for byte (SECURITY.md OA-1). So the parsed value keeps
//! the original string: `…/callback` and `…/callback/` stay two different URIs, and nothing is
//! ever rebuilt from a parsed `Url`. The `url` crate is used only to *check* the string, and a
//! string it would spell differently (an upper-case host or scheme, a default port, a missing
//! `/` path, `..` segments, an IPv4 address as a number, in hex, octal or short form such as
//! `127.1`) is refused with the canonical spelling shown: the admin enters that, and what is
//! stored is then what every parser agrees on.
//!
//! Rules (finch-api.md §1.4): an absolute `https` URI; `http` only for `localhost` or a loopback
//! address (local development), and only while finchgate itself is reached on a loopback address
//! ([`LoopbackHttp`]); a non-empty host; no user-info (`user@host`), no fragment (`#…`); at most
//! 2,048 characters; only characters RFC 3986 allows in a URI (so no spaces, control characters,
//! backslashes or raw non-ASCII, which browsers and parsers would rewrite silently), with `%`
//! always starting a two-digit escape; the canonical spelling.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// The longest redirect URI accepted (the `redirect_uris.uri` column allows as much).
pub const MAX_LEN: usize = 2048;

/// Whether plain `http` may be whitelisted for a loopback host: only while finchgate's own public
/// URL is a loopback one (a developer's machine). The caller decides from its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopbackHttp {
    Allowed,
    Refused,
}

/// A redirect URI that passed [`RedirectUri::parse`]; its text is the input, unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri(String);

/// Why a string is not an acceptable redirect URI. `Display` is a sentence for the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("Enter a redirect URI.")]
    Empty,
    #[error("The redirect URI is {len} characters long; the limit is {MAX_LEN}.")]
    TooLong { len: usize },
    #[error("The redirect URI starts or ends with a space or line break; remove it.")]
    SurroundingWhitespace,
    #[error(
        "The redirect URI contains {what}, which is not allowed in a URI; percent-encode it (for example a space as %20)."
    )]
    InvalidCharacter { what: String },
    #[error("The redirect URI has a % that is not followed by two hexadecimal digits.")]
    BadPercentEscape,
    #[error(
        "The redirect URI must be an absolute URL starting with https:// (for example https://app.example.com/finch/callback)."
    )]
    NotAbsolute,
    #[error("The redirect URI must use https (http is allowed only for localhost and 127.0.0.1).")]
    Scheme,
    #[error(
        "The redirect URI uses http with host {host}; http is allowed only for localhost and loopback addresses — use https."
    )]
    HttpNotLoopback { host: String },
    #[error(
        "The redirect URI uses http; finchgate is served over https, so its callbacks must be too — use https (plain http is accepted only for a loopback host while finchgate itself runs on one)."
    )]
    HttpNotAllowed,
    #[error(
        "The redirect URI is not written in its canonical form; Finch compares redirect URIs character for character, so enter it as {canonical}"
    )]
    NotCanonical { canonical: String },
    #[error("The redirect URI has no host name.")]
    NoHost,
    #[error("The redirect URI is not a valid URL: {reason}.")]
    Invalid { reason: String },
    #[error("The redirect URI must not contain a user name or password (the part before @).")]
    UserInfo,
    #[error("The redirect URI must not contain a fragment (the part from #).")]
    Fragment,
}

impl RedirectUri {
    /// Checks `raw` against the rules in the module documentation and keeps it unchanged.
    pub fn parse(raw: &str, loopback_http: LoopbackHttp) -> Result<Self, RedirectUriError> {
        if raw.is_empty() {
            return Err(RedirectUriError::Empty);
        }
        let len = raw.chars().count();
        if len > MAX_LEN {
            return Err(RedirectUriError::TooLong { len });
        }
        if raw.starts_with(char::is_whitespace) || raw.ends_with(char::is_whitespace) {
            return Err(RedirectUriError::SurroundingWhitespace);
        }
        check_characters(raw)?;
        if raw.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        // The url crate accepts `https:host` and `https:///host` for special schemes; a
        // redirect URI must spell its authority out, so look at the raw text first.
        let (scheme, rest) = raw.split_once(':').ok_or(RedirectUriError::NotAbsolute)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(if is_scheme(&scheme) {
                RedirectUriError::Scheme
            } else {
                RedirectUriError::NotAbsolute
            });
        }
        let authority = rest
            .strip_prefix("//")
            .map(|after| after.split(['/', '?']).next().unwrap_or_default())
            .ok_or(RedirectUriError::NotAbsolute)?;
        if authority.contains('@') {
            return Err(RedirectUriError::UserInfo);
        }
        if authority.is_empty() || authority.starts_with(':') {
            return Err(RedirectUriError::NoHost);
        }
        let url = Url::parse(raw).map_err(|e| match e {
            url::ParseError::EmptyHost => RedirectUriError::NoHost,
            url::ParseError::RelativeUrlWithoutBase => RedirectUriError::NotAbsolute,
            other => RedirectUriError::Invalid {
                reason: other.to_string(),
            },
        })?;
        let host = url.host().ok_or(RedirectUriError::NoHost)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::UserInfo);
        }
        if url.fragment().is_some() {
            return Err(RedirectUriError::Fragment);
        }
        if url.scheme() == "http" {
            if loopback_http == LoopbackHttp::Refused {
                return Err(RedirectUriError::HttpNotAllowed);
            }
            if !is_loopback(&host) {
                return Err(RedirectUriError::HttpNotLoopback {
                    host: host.to_string(),
                });
            }
        }
        if url.as_str() != raw {
            return Err(RedirectUriError::NotCanonical {
                canonical: url.to_string(),
            });
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URI exactly as it was given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether `candidate` is this URI, byte for byte (no normalisation of any kind).
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes() == candidate.as_bytes()
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RedirectUri {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `localhost` (any case) or an IPv4/IPv6 loopback address.
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Only RFC 3986 characters (unreserved, reserved, `%`), and `%` only as `%XX`.
fn check_characters(raw: &str) -> Result<(), RedirectUriError> {
    if let Some(bad) = raw.chars().find(|c| !is_uri_char(*c)) {
        return Err(RedirectUriError::InvalidCharacter {
            what: describe(bad),
        });
    }
    let bytes = raw.as_bytes();
    for (i, _) in raw.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Err(RedirectUriError::BadPercentEscape);
        }
    }
    Ok(())
}

fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            // unreserved
            '-' | '.' | '_' | '~'
            // gen-delims
            | ':' | '/' | '?' | '#' | '[' | ']' | '@'
            // sub-delims
            | '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | ';' | '='
            | '%'
        )
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        c if c.is_control() => format!("a control character (U+{:04X})", u32::from(c)),
        c if !c.is_ascii() => format!("the non-ASCII character “{c}”"),
        c => format!("the character “{c}”"),
    }
}

/// The tenant's Finch callback URL, `{public_url}/t/{slug}/finch/callback`: what the tenant
/// registers in Finch's dashboard and whitelists here.
pub fn callback_url(public_url: &url::Url, slug: &str) -> String {
    format!(
        "{}/t/{slug}/finch/callback",
        public_url.as_str().trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_url_hangs_off_the_public_url_without_a_double_slash() -> anyhow::Result<()> {
        for base in ["https://gate.example.com", "https://gate.example.com/"] {
            assert_eq!(
                callback_url(&url::Url::parse(base)?, "acme"),
                "https://gate.example.com/t/acme/finch/callback"
            );
        }
        Ok(())
    }
    use proptest::prelude::*;

    #[test]
    fn the_rules_accept_and_refuse_as_documented() {
        use RedirectUriError as E;
        let long = format!("https://example.com/{}", "a".repeat(MAX_LEN - 20));
        let too_long = format!("{long}a");
        let cases: Vec<(&str, Result<(), RedirectUriError>)> = vec![
            ("https://app.example.com/finch/callback", Ok(())),
            ("https://app.example.com/finch/callback/", Ok(())),
            ("https://app.example.com/", Ok(())),
            ("https://app.example.com:8443/cb?tenant=acme&x=1", Ok(())),
            ("https://app.example.com/a%2Fb", Ok(())),
            ("https://[2001:db8::1]/cb", Ok(())),
            ("http://localhost/cb", Ok(())),
            ("http://localhost:3000/cb", Ok(())),
            ("http://127.0.0.1:9/cb", Ok(())),
            ("http://127.10.0.1/cb", Ok(())),
            ("http://[::1]:8080/cb", Ok(())),
            (long.as_str(), Ok(())),
            ("", Err(E::Empty)),
            // Spelled otherwise than the url crate (and browsers) spell it: refused, with the
            // canonical form to enter instead (issue 13, defect 11).
            (
                "https://APP.Example.com/cb",
                canonical("https://app.example.com/cb"),
            ),
            (
                "HTTPS://app.example.com/cb",
                canonical("https://app.example.com/cb"),
            ),
            (
                "https://app.example.com",
                canonical("https://app.example.com/"),
            ),
            (
                "http://LOCALHOST:3000/cb",
                canonical("http://localhost:3000/cb"),
            ),
            (
                "https://app.example.com:443/cb",
                canonical("https://app.example.com/cb"),
            ),
            (
                "https://app.example.com/a/../cb",
                canonical("https://app.example.com/cb"),
            ),
            ("http://2130706433/cb", canonical("http://127.0.0.1/cb")),
            ("http://0x7f000001/cb", canonical("http://127.0.0.1/cb")),
            ("http://0177.0.0.1/cb", canonical("http://127.0.0.1/cb")),
            ("http://127.1/cb", canonical("http://127.0.0.1/cb")),
            ("http://[0:0:0:0:0:0:0:1]/cb", canonical("http://[::1]/cb")),
            ("https://3232235777/cb", canonical("https://192.168.1.1/cb")),
            (too_long.as_str(), Err(E::TooLong { len: MAX_LEN + 1 })),
            (" https://app.example.com/cb", Err(E::SurroundingWhitespace)),
            (
                "https://app.example.com/cb\n",
                Err(E::SurroundingWhitespace),
            ),
            (
                "https://app.example.com/c b",
                Err(E::InvalidCharacter {
                    what: "a space".into(),
                }),
            ),
            (
                "https://app.example.com/c\u{7f}b",
                Err(E::InvalidCharacter {
                    what: "a control character (U+007F)".into(),
                }),
            ),
            (
                "https://app.example.com/café",
                Err(E::InvalidCharacter {
                    what: "the non-ASCII character “é”".into(),
                }),
            ),
            (
                "https://good.example\\@evil.example/",
                Err(E::InvalidCharacter {
                    what: "the character “\\”".into(),
                }),
            ),
            ("https://app.example.com/%zz", Err(E::BadPercentEscape)),
            ("https://app.example.com/%2", Err(E::BadPercentEscape)),
            (
                "http://evil.example",
                Err(E::HttpNotLoopback {
                    host: "evil.example".into(),
                }),
            ),
            (
                "http://localhost.evil.example/cb",
                Err(E::HttpNotLoopback {
                    host: "localhost.evil.example".into(),
                }),
            ),
            (
                "http://10.0.0.1/cb",
                Err(E::HttpNotLoopback {
                    host: "10.0.0.1".into(),
                }),
            ),
            ("ftp://app.example.com/cb", Err(E::Scheme)),
            ("javascript:alert(1)", Err(E::Scheme)),
            ("myapp://callback", Err(E::Scheme)),
            ("/finch/callback", Err(E::NotAbsolute)),
            ("app.example.com/cb", Err(E::NotAbsolute)),
            ("https:app.example.com/cb", Err(E::NotAbsolute)),
            ("https:///app.example.com/cb", Err(E::NoHost)),
            ("https://", Err(E::NoHost)),
            ("https://:443/cb", Err(E::NoHost)),
            ("https://user@app.example.com/cb", Err(E::UserInfo)),
            ("https://user:pw@app.example.com/cb", Err(E::UserInfo)),
            ("https://good.example@evil.example/cb", Err(E::UserInfo)),
            ("https://@app.example.com/cb", Err(E::UserInfo)),
            ("https://app.example.com/cb#top", Err(E::Fragment)),
            ("https://app.example.com/cb#", Err(E::Fragment)),
        ];
        for (input, expected) in cases {
            let got = RedirectUri::parse(input, LoopbackHttp::Allowed);
            match expected {
                Ok(()) => assert_eq!(
                    got.as_ref().map(RedirectUri::as_str),
                    Ok(input),
                    "{input:?} is accepted unchanged"
                ),
                Err(error) => assert_eq!(got, Err(error), "{input:?}"),
            }
        }
    }

    fn canonical(form: &str) -> Result<(), RedirectUriError> {
        Err(RedirectUriError::NotCanonical {
            canonical: form.to_owned(),
        })
    }

    #[test]
    fn plain_http_is_refused_for_every_host_while_finchgate_itself_is_not_on_loopback() {
        for input in [
            "http://localhost:9/cb",
            "http://127.0.0.1/cb",
            "http://[::1]/cb",
            "http://0x7f000001/cb",
            "http://evil.example/cb",
        ] {
            assert_eq!(
                RedirectUri::parse(input, LoopbackHttp::Refused),
                Err(RedirectUriError::HttpNotAllowed),
                "{input}"
            );
        }
        assert!(RedirectUri::parse("https://localhost:9/cb", LoopbackHttp::Refused).is_ok());
        assert!(RedirectUri::parse("http://localhost:9/cb", LoopbackHttp::Allowed).is_ok());
    }

    #[test]
    fn a_non_canonical_uri_is_refused_with_the_form_to_enter() {
        let error =
            RedirectUri::parse("http://127.1/cb", LoopbackHttp::Allowed).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "The redirect URI is not written in its canonical form; Finch compares redirect URIs \
             character for character, so enter it as http://127.0.0.1/cb"
        );
    }

    #[test]
    fn an_invalid_port_or_host_is_refused_with_the_reason() {
        assert_eq!(
            RedirectUri::parse("https://app.example.com:99999/cb", LoopbackHttp::Allowed)
                .map_err(|e| e.to_string()),
            Err("The redirect URI is not a valid URL: invalid port number.".to_owned())
        );
        for input in ["https://app.example.com:99999/cb", "https://exa%mple.com/"] {
            let error = RedirectUri::parse(input, LoopbackHttp::Allowed).expect_err(input);
            assert!(
                matches!(
                    error,
                    RedirectUriError::Invalid { .. } | RedirectUriError::BadPercentEscape
                ),
                "{input}: {error:?}"
            );
        }
    }

    #[test]
    fn matching_is_exact_byte_comparison() -> Result<(), RedirectUriError> {
        let uri = RedirectUri::parse("https://app.example.com/callback", LoopbackHttp::Allowed)?;
        assert!(uri.matches("https://app.example.com/callback"));
        for other in [
            "https://app.example.com/callback/",
            "https://APP.example.com/callback",
            "https://app.example.com/callback?x=1",
            "https://app.example.com/%63allback",
            "https://app.example.com:443/callback",
        ] {
            assert!(!uri.matches(other), "{other}");
        }
        Ok(())
    }

    #[test]
    fn every_message_is_a_sentence_for_a_person() {
        let error = RedirectUri::parse("http://evil.example/cb", LoopbackHttp::Allowed)
            .expect_err("refused");
        assert_eq!(
            error.to_string(),
            "The redirect URI uses http with host evil.example; http is allowed only for \
             localhost and loopback addresses — use https."
        );
    }

    fn uri_like() -> impl Strategy<Value = String> {
        let scheme = prop_oneof![
            Just("https"),
            Just("http"),
            Just("HTTPS"),
            Just("ftp"),
            Just("")
        ];
        let sep = prop_oneof![Just("://"), Just(":"), Just(":///"), Just("//")];
        let host = prop_oneof![
            Just("localhost".to_owned()),
            Just("127.0.0.1".to_owned()),
            Just("[::1]".to_owned()),
            "[a-zA-Z0-9.-]{0,20}",
            "[a-z]{1,5}@[a-z]{1,5}",
        ];
        let port = prop_oneof![
            Just(String::new()),
            (0u32..70_000).prop_map(|p| format!(":{p}"))
        ];
        let tail = "[a-zA-Z0-9/?#%&=._~ :@!$'()*+,;\\[\\]-]{0,40}";
        (scheme, sep, host, port, tail).prop_map(|(s, sep, h, p, t)| format!("{s}{sep}{h}{p}{t}"))
    }

    proptest! {
        #[test]
        fn an_accepted_uri_is_kept_byte_for_byte(
            s in prop_oneof![uri_like(), any::<String>()],
            loopback_http in prop_oneof![Just(LoopbackHttp::Allowed), Just(LoopbackHttp::Refused)],
        ) {
            if let Ok(uri) = RedirectUri::parse(&s, loopback_http) {
                prop_assert_eq!(uri.as_str(), s.as_str());
                prop_assert!(uri.matches(&s));
                prop_assert!(!s.contains('#'));
                let url = Url::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(url.as_str(), s.as_str(), "the canonical spelling");
                prop_assert!(
                    url.scheme() == "https"
                        || (url.scheme() == "http" && loopback_http == LoopbackHttp::Allowed)
                );
                prop_assert!(url.username().is_empty() && url.password().is_none());
                prop_assert!(s.chars().count() <= MAX_LEN);
            }
        }
    }
}
