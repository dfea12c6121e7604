//! Registry authentication as the Distribution spec has it: the `/v2/` ping's
//! `WWW-Authenticate` challenge, then either HTTP Basic with the Docker config's credentials, or a
//! Bearer token from the challenge's realm for a `service` and `scope`s — with Basic credentials,
//! an identity (refresh) token (OAuth2 `POST`), or anonymously. A scope may hold several
//! space-separated scopes (one token for all of them). Tokens are cached per scope for the life
//! of the client (one release) until they expire.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde::Deserialize;

use crate::docker_config::credentials::Credentials;
use crate::http::Client as Http;

/// What the registry asked for at `/v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `/v2/` answered 200: no authentication.
    Open,
    /// `Basic realm=…`.
    Basic,
    /// `Bearer realm=…,service=…`: tokens from the realm.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The registry's name for itself at the token endpoint.
        service: Option<String>,
    },
}

/// The scheme and parameters of a `WWW-Authenticate` value
/// (`Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`).
pub fn parse_www_authenticate(value: &str) -> Option<(String, BTreeMap<String, String>)> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    let mut params = BTreeMap::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &quoted[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(key, val);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some((scheme.to_ascii_lowercase(), params))
}

/// The challenge of a 401 answer's `WWW-Authenticate`.
pub fn challenge_of(value: Option<&str>) -> Option<Challenge> {
    let (scheme, params) = parse_www_authenticate(value?)?;
    match scheme.as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        }),
        _ => None,
    }
}

/// A token and when to stop using it.
#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Why a token could not be had.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// The realm refused the credentials (or anonymous access).
    Refused(u16),
    /// The realm could not be reached or answered something else.
    Failed(String),
}

/// The tokens one client got, by scope.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    by_scope: tokio::sync::Mutex<HashMap<String, Token>>,
}

impl Tokens {
    /// A token for `scope` from the cache or the realm.
    pub(crate) async fn get(
        &self,
        http: &Http,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credentials: Option<&Credentials>,
    ) -> Result<String, TokenError> {
        let mut cache = self.by_scope.lock().await;
        if let Some(t) = cache.get(scope)
            && t.expires > Instant::now()
        {
            return Ok(t.value.clone());
        }
        let token = fetch(http, realm, service, scope, credentials).await?;
        let value = token.value.clone();
        cache.insert(scope.to_owned(), token);
        Ok(value)
    }

    /// Forgets the token of `scope` (the registry rejected it).
    pub(crate) async fn forget(&self, scope: &str) {
        self.by_scope.lock().await.remove(scope);
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `service` and `scope` parameters of a token request. Several scopes (space-separated,
/// e.g. a push and the pull of a mount's source) go as one `scope` parameter each, as the token
/// spec and the docker CLI send them.
fn token_query(service: Option<&str>, scope: &str) -> Vec<String> {
    let mut query = Vec::new();
    if let Some(service) = service {
        query.push(format!("service={}", encode(service)));
    }
    for scope in scope.split_whitespace() {
        query.push(format!("scope={}", encode(scope)));
    }
    query
}

async fn fetch(
    http: &Http,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    credentials: Option<&Credentials>,
) -> Result<Token, TokenError> {
    let query = token_query(service, scope);
    let request = match credentials {
        // An identity token is an OAuth2 refresh token (what `docker login` stores for some
        // registries, and what helpers answer with the user `<token>`).
        Some(Credentials {
            identity_token: Some(refresh),
            ..
        }) => {
            let mut form = query.clone();
            form.push("grant_type=refresh_token".to_owned());
            form.push(format!("refresh_token={}", encode(refresh)));
            form.push("client_id=cargo-docker-release".to_owned());
            Request::builder()
                .method(Method::POST)
                .uri(realm)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("User-Agent", super::USER_AGENT)
                .body(Full::new(Bytes::from(form.join("&"))))
        }
        other => {
            let sep = if realm.contains('?') { '&' } else { '?' };
            let uri = if query.is_empty() {
                realm.to_owned()
            } else {
                format!("{realm}{sep}{}", query.join("&"))
            };
            let mut b = Request::builder()
                .method(Method::GET)
                .uri(uri)
                .header("User-Agent", super::USER_AGENT);
            if let Some(c) = other {
                b = b.header("Authorization", c.basic_header());
            }
            b.body(Full::new(Bytes::new()))
        }
    }
    .map_err(|e| TokenError::Failed(format!("bad realm `{realm}`: {e}")))?;
    let response = http
        .send(request)
        .await
        .map_err(|e| TokenError::Failed(e.to_string()))?;
    match response.status.as_u16() {
        200 => {}
        401 | 403 => return Err(TokenError::Refused(response.status.as_u16())),
        other => {
            return Err(TokenError::Failed(format!(
                "the realm answered HTTP {other}"
            )));
        }
    }
    let answer: TokenAnswer = serde_json::from_slice(&response.body)
        .map_err(|_| TokenError::Failed("the realm's answer is not a token (JSON)".to_owned()))?;
    let value = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TokenError::Failed("the realm's answer holds no token".to_owned()))?;
    // The spec's default lifetime is 60 s; renew a little early.
    let lifetime = answer.expires_in.unwrap_or(60).max(10);
    Ok(Token {
        value,
        expires: Instant::now() + Duration::from_secs(lifetime - 5),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse_with_quotes_and_commas() {
        let c = challenge_of(Some(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        ));
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
        let (_, params) = parse_www_authenticate(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(params["scope"], "repository:user/image:pull");
        assert_eq!(params["error"], "insufficient_scope");
        assert_eq!(
            challenge_of(Some(r#"Basic realm="Registry Realm""#)),
            Some(Challenge::Basic)
        );
        assert_eq!(challenge_of(Some("Negotiate")), None);
        assert_eq!(challenge_of(None), None);
    }

    #[test]
    fn several_scopes_are_several_scope_parameters() {
        assert_eq!(
            token_query(Some("reg"), "repository:a:pull,push repository:b:pull"),
            [
                "service=reg",
                "scope=repository%3Aa%3Apull%2Cpush",
                "scope=repository%3Ab%3Apull"
            ]
        );
        assert_eq!(token_query(None, ""), Vec::<String>::new());
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
