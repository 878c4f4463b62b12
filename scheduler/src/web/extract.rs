//! What a handler needs, as axum extractors: the language ([`Lang`]), the
//! signed-in caller ([`SignedIn`]), a job the caller may see or act on
//! ([`JobAccess`]), and a signed-in form carrying the session's CSRF token
//! ([`Posted`], [`JobPost`]). Each one answers with the right refusal page
//! (audited where the API audits) when it cannot be had, so a handler
//! states what it needs and starts with it. The decisions themselves are
//! `crate::auth`'s ([`Caller::may`]) and `crate::service::job_for`'s, the
//! API's.
//!
//! Sessions are in memory, keyed by a random 256-bit id carried in the
//! `trawl_session` cookie (`HttpOnly; Secure; SameSite=Strict; Path=/`),
//! cookies read and written with the `cookie` crate.

use super::i18n::Lang;
use super::{Peer, Web, not_found, unauthorized};
use crate::auth::Perm;
use crate::core::Caller;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use std::convert::Infallible;
use std::marker::PhantomData;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(super) struct Session {
    /// The bearer token it signed in with (kept server-side only): checked
    /// again on every request, so a revoked or expired token ends the
    /// session at once.
    pub token: String,
    pub csrf: String,
    pub expires_ms: i64,
}

/// Sessions last this long after sign-in.
pub(super) const SESSION_MS: i64 = 8 * 3600 * 1000;
/// The session cookie.
pub(super) const COOKIE: &str = "trawl_session";
/// The sign-in form's double-submit CSRF cookie.
pub(super) const PRELOGIN: &str = "trawl_prelogin";

/// 256 random bits, in hex.
pub(super) fn random_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Constant-time comparison of two secrets.
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` of a request.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Sets cookie `name` on a response: `HttpOnly; Secure; SameSite=Strict;
/// Path=/` and `Max-Age` (0 removes it).
pub(super) fn set_cookie(r: &mut Response, name: &str, value: &str, max_age_s: i64) {
    let c = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age_s))
        .build();
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The peer address of the connection.
fn peer(parts: &Parts) -> String {
    parts
        .extensions
        .get::<Peer>()
        .map_or_else(|| "unknown".to_string(), |p| p.0.clone())
}

/// The browser's language (`Accept-Language`).
impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Lang::from_accept(
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        ))
    }
}

/// The signed-in caller: a live session whose token still authenticates
/// (re-checked on every request). Otherwise the 401 page with a way to
/// sign in; a session whose token no longer authenticates is ended and
/// the refusal audited.
pub(super) struct SignedIn {
    pub lang: Lang,
    pub caller: Caller,
    pub session: Session,
    /// The session's id (the cookie's value).
    pub id: String,
}

impl FromRequestParts<Web> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, w: &Web) -> Result<Self, Response> {
        let Ok(lang) = Lang::from_request_parts(parts, w).await;
        let out = || unauthorized(lang);
        let id = cookie(&parts.headers, COOKIE).ok_or_else(out)?;
        let session = {
            let mut m = w.sessions.lock();
            let now = trawl_store::now_ms();
            m.retain(|_, s| s.expires_ms > now);
            m.get(&id).cloned().ok_or_else(out)?
        };
        let a = w.sched.authenticator().ok_or_else(out)?;
        let peer = peer(parts);
        let bearer = ["Bearer ", &session.token].concat();
        match a.authenticate(Some(&bearer), None, &peer) {
            Ok(caller) => Ok(Self {
                lang,
                caller,
                session,
                id,
            }),
            Err(r) => {
                w.sessions.lock().remove(&id);
                let why = ["web session: ", &r.reason].concat();
                w.sched.audit_refusal(&r.who, &peer, &why);
                Err(out())
            }
        }
    }
}

impl SignedIn {
    /// The refusal page for this caller (keeps the sign-out button).
    pub fn refusal(&self, status: axum::http::StatusCode, title: &str, text: &str) -> Response {
        super::refusal(
            status,
            self.lang,
            &self.caller,
            &self.session.csrf,
            title,
            text,
        )
    }

    /// Another case's job is answered as a job that does not exist.
    fn not_found(&self) -> Response {
        not_found(self.lang, &self.caller, &self.session.csrf)
    }

    /// Refuses a form without the session's CSRF token (audited).
    fn csrf_refused(&self, w: &Web, what: &str) -> Response {
        w.sched.audit(
            &self.caller,
            "denied",
            what,
            "",
            "web: missing or forged CSRF token",
        );
        super::csrf_refused(self.lang, Some(&self.caller))
    }
}

/// What a job route needs the caller to be allowed: [`Read`] or
/// [`Cancel`].
pub(super) trait Need {
    const PERM: Perm;
}

/// Reading the job (its page, events, charts, report).
pub(super) struct Read;

impl Need for Read {
    const PERM: Perm = Perm::Read;
}

/// Cancelling the job.
pub(super) struct Cancel;

impl Need for Cancel {
    const PERM: Perm = Perm::Cancel;
}

/// The canonical job id of a `/jobs/{id}/...` route.
async fn job_id(parts: &mut Parts, w: &Web) -> Result<String, Response> {
    Path::<String>::from_request_parts(parts, w)
        .await
        .map(|Path(id)| crate::service::canonical_job_id(&id))
        .map_err(IntoResponse::into_response)
}

/// The job of a route, if the caller may `N::PERM` it (the API's check
/// and audit entry: one rule for both doors).
fn lookup<N: Need>(who: &SignedIn, w: &Web, id: &str) -> Option<trawl_store::JobRecord> {
    crate::service::job_for(&w.sched, &who.caller, N::PERM, id).ok()
}

/// A job the signed-in caller may `N::PERM`.
pub(super) struct JobAccess<N: Need = Read> {
    pub who: SignedIn,
    pub job: trawl_store::JobRecord,
    need: PhantomData<N>,
}

impl<N: Need> FromRequestParts<Web> for JobAccess<N> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, w: &Web) -> Result<Self, Response> {
        let who = SignedIn::from_request_parts(parts, w).await?;
        let id = job_id(parts, w).await?;
        let job = lookup::<N>(&who, w, &id).ok_or_else(|| who.not_found())?;
        Ok(Self {
            who,
            job,
            need: PhantomData,
        })
    }
}

/// The fields of a posted form, in order.
#[derive(Debug, Default, Clone)]
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of field `name` (empty when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The form of `req`, if it carries the session's CSRF token.
async fn csrf_form(req: Request, w: &Web, who: &SignedIn) -> Option<Fields> {
    match Form::<Vec<(String, String)>>::from_request(req, w).await {
        Ok(Form(f)) => {
            let f = Fields(f);
            same(&who.session.csrf, f.get("csrf")).then_some(f)
        }
        Err(_) => None,
    }
}

/// Whether the form of `req` carries the session's CSRF token.
async fn csrf_ok(req: Request, w: &Web, who: &SignedIn) -> bool {
    csrf_form(req, w, who).await.is_some()
}

/// A form posted by the signed-in caller with the session's CSRF token,
/// and its fields; a missing or forged token is refused (403, audited
/// with the form's path).
pub(super) struct Posted(pub SignedIn, pub Fields);

impl FromRequest<Web> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, w: &Web) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let who = SignedIn::from_request_parts(&mut parts, w).await?;
        let what = match parts.uri.path() {
            "/logout" => "sign out".to_string(),
            p => p.chars().take(200).collect(),
        };
        match csrf_form(Request::from_parts(parts, body), w, &who).await {
            Some(f) => Ok(Self(who, f)),
            None => Err(who.csrf_refused(w, &what)),
        }
    }
}

/// A form posted about a job: the CSRF token checked first (refusal
/// audited with the job id), then the job as [`JobAccess`].
pub(super) struct JobPost<N: Need = Read> {
    pub who: SignedIn,
    pub job: trawl_store::JobRecord,
    need: PhantomData<N>,
}

impl<N: Need> FromRequest<Web> for JobPost<N> {
    type Rejection = Response;

    async fn from_request(req: Request, w: &Web) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let who = SignedIn::from_request_parts(&mut parts, w).await?;
        let id = job_id(&mut parts, w).await?;
        if !csrf_ok(Request::from_parts(parts, body), w, &who).await {
            return Err(who.csrf_refused(w, &id));
        }
        let job = lookup::<N>(&who, w, &id).ok_or_else(|| who.not_found())?;
        Ok(Self {
            who,
            job,
            need: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_keep_their_attributes() {
        let mut r = Response::new(axum::body::Body::empty());
        set_cookie(&mut r, COOKIE, "abc123", 600);
        set_cookie(&mut r, PRELOGIN, "", 0);
        let set: Vec<&str> = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(set.len(), 2, "{set:?}");
        let first: Vec<&str> = set[0].split("; ").collect();
        assert_eq!(first[0], "trawl_session=abc123");
        for a in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=600",
        ] {
            assert!(first.contains(&a), "{a} missing from {}", set[0]);
        }
        assert!(set[1].starts_with("trawl_prelogin=;"), "{}", set[1]);
        assert!(set[1].contains("Max-Age=0"), "{}", set[1]);
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; trawl_session=s3cr3t"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("trawl_prelogin=p"));
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("s3cr3t"));
        assert_eq!(cookie(&h, PRELOGIN).as_deref(), Some("p"));
        assert_eq!(cookie(&h, "trawl"), None);
        // A malformed pair is skipped, not fatal.
        let mut bad = HeaderMap::new();
        bad.append(
            header::COOKIE,
            HeaderValue::from_static("=x; junk; trawl_session=ok"),
        );
        assert_eq!(cookie(&bad, COOKIE).as_deref(), Some("ok"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "x"));
    }
}
