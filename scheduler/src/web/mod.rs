//! The case officers' web dashboard, served by the scheduler itself
//! (`--http ADDR`): server-rendered pages, a little JavaScript, every asset
//! served from here (no CDN).
//!
//! Sign-in takes the same bearer tokens as the gRPC API and gives a session
//! cookie (`HttpOnly; Secure; SameSite=Strict`); every form carries the
//! session's CSRF token; each page checks the same per-case access as the
//! API ([`Caller::may`]); refusals are audited. Every value from evidence,
//! users or rules is HTML-escaped ([`esc`]).

mod archive;
mod charts;
mod i18n;
mod pages;

/// Every text of the dashboard: (key, English, French).
pub use i18n::TEXTS;

use crate::auth::Perm;
use crate::core::{Caller, Scheduler};
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use i18n::Lang;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A signed-in browser.
#[derive(Debug, Clone)]
struct Session {
    /// The bearer token it signed in with (kept server-side only): checked
    /// again on every request, so a revoked or expired token ends the
    /// session at once.
    token: String,
    csrf: String,
    expires_ms: i64,
}

/// Sessions last this long after sign-in.
const SESSION_MS: i64 = 8 * 3600 * 1000;
const COOKIE: &str = "trawl_session";
const PRELOGIN: &str = "trawl_prelogin";

#[derive(Clone)]
struct Web {
    sched: Arc<Scheduler>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

/// The peer of a connection.
#[derive(Clone, Debug)]
struct Peer(String);

fn random_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn lang(headers: &HeaderMap) -> Lang {
    Lang::from_accept(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// Constant-time comparison of two secrets.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The signed-in caller, or why not.
enum Who {
    In(Caller, Session),
    Out,
}

impl Web {
    fn who(&self, headers: &HeaderMap, peer: &str) -> Who {
        let Some(id) = cookie(headers, COOKIE) else {
            return Who::Out;
        };
        let s = {
            let mut m = self.sessions.lock();
            let now = trawl_store::now_ms();
            m.retain(|_, s| s.expires_ms > now);
            match m.get(&id) {
                Some(s) => s.clone(),
                None => return Who::Out,
            }
        };
        let Some(a) = self.sched.authenticator() else {
            return Who::Out;
        };
        match a.authenticate(Some(&format!("Bearer {}", s.token)), None, peer) {
            Ok(c) => Who::In(c, s),
            Err(r) => {
                self.sessions.lock().remove(&id);
                self.sched
                    .audit_refusal(&r.who, peer, &format!("web session: {}", r.reason));
                Who::Out
            }
        }
    }
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn unauthorized(l: Lang) -> Response {
    html(
        StatusCode::UNAUTHORIZED,
        pages::layout(
            l,
            None,
            l.t("unauth_title"),
            &format!(
                "<h1>{}</h1><p>{}</p><p><a href=\"/login\">{}</a></p>",
                l.t("unauth_title"),
                l.t("unauth"),
                l.t("sign_in")
            ),
        ),
    )
}

/// A refusal page for a signed-in user: what happened, a way back, and
/// the sign-out button.
fn refusal(
    status: StatusCode,
    l: Lang,
    who: &Caller,
    csrf: &str,
    title: &str,
    text: &str,
) -> Response {
    html(
        status,
        pages::layout_signed(
            l,
            who,
            csrf,
            title,
            &format!(
                "<h1>{}</h1><p id=\"refusal\">{}</p><p><a id=\"back\" href=\"/cases\">{}</a></p>",
                esc(title),
                esc(text),
                l.t("back_to_cases")
            ),
        ),
    )
}

fn forbidden(l: Lang, who: &Caller, csrf: &str) -> Response {
    refusal(
        StatusCode::FORBIDDEN,
        l,
        who,
        csrf,
        l.t("forbidden_title"),
        l.t("forbidden"),
    )
}

fn not_found(l: Lang, who: &Caller, csrf: &str) -> Response {
    refusal(
        StatusCode::NOT_FOUND,
        l,
        who,
        csrf,
        l.t("not_found"),
        l.t("not_found_text"),
    )
}

/// A page handler's common start: the language and the signed-in caller.
macro_rules! signed_in {
    ($w:expr, $headers:expr, $peer:expr) => {{
        let l = lang(&$headers);
        match $w.who(&$headers, &$peer.0) {
            Who::In(c, s) => (l, c, s),
            Who::Out => return unauthorized(l),
        }
    }};
}

async fn login_form(headers: HeaderMap) -> Response {
    let l = lang(&headers);
    let pre = random_hex();
    let mut r = html(StatusCode::OK, pages::login(l, &pre, None));
    set_cookie(&mut r, PRELOGIN, &pre, 600);
    r
}

fn set_cookie(r: &mut Response, name: &str, value: &str, max_age: i64) {
    let v = format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
    csrf: String,
}

async fn login(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let l = lang(&headers);
    // Login CSRF: the form must come from our own page (double submit).
    let pre = cookie(&headers, PRELOGIN).unwrap_or_default();
    if pre.is_empty() || !same(&pre, &f.csrf) {
        w.sched
            .audit_refusal("", &peer.0, "web sign-in: missing or forged CSRF token");
        return html(
            StatusCode::FORBIDDEN,
            pages::layout(
                l,
                None,
                l.t("forbidden_title"),
                &format!("<h1>{}</h1><p>{}</p>", l.t("forbidden_title"), l.t("csrf")),
            ),
        );
    }
    let Some(a) = w.sched.authenticator() else {
        return unauthorized(l);
    };
    let token = f.token.trim().to_string();
    match a.authenticate(Some(&format!("Bearer {token}")), None, &peer.0) {
        Ok(c) => {
            let id = random_hex();
            w.sessions.lock().insert(
                id.clone(),
                Session {
                    token,
                    csrf: random_hex(),
                    expires_ms: trawl_store::now_ms() + SESSION_MS,
                },
            );
            w.sched
                .audit(&c, "web.sign_in", "dashboard", "", String::new());
            let mut r = see_other("/cases");
            set_cookie(&mut r, COOKIE, &id, SESSION_MS / 1000);
            set_cookie(&mut r, PRELOGIN, "", 0);
            r
        }
        Err(e) => {
            w.sched
                .audit_refusal(&e.who, &peer.0, &format!("web sign-in: {}", e.reason));
            let pre = random_hex();
            let mut r = html(
                StatusCode::UNAUTHORIZED,
                pages::login(l, &pre, Some(l.t("bad_token"))),
            );
            set_cookie(&mut r, PRELOGIN, &pre, 600);
            r
        }
    }
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    if !same(&s.csrf, &f.csrf) {
        return csrf_refused(&w, &c, l, "sign out");
    }
    if let Some(id) = cookie(&headers, COOKIE) {
        w.sessions.lock().remove(&id);
    }
    let mut r = see_other("/login");
    set_cookie(&mut r, COOKIE, "", 0);
    r
}

fn csrf_refused(w: &Web, c: &Caller, l: Lang, what: &str) -> Response {
    w.sched
        .audit(c, "denied", what, "", "web: missing or forged CSRF token");
    html(
        StatusCode::FORBIDDEN,
        pages::layout(
            l,
            Some(c),
            l.t("forbidden_title"),
            &format!("<h1>{}</h1><p>{}</p>", l.t("forbidden_title"), l.t("csrf")),
        ),
    )
}

/// A redirect after a form (303) to a path of ours.
fn see_other(to: &str) -> Response {
    let mut r = (StatusCode::SEE_OTHER, "").into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn root() -> Response {
    see_other("/cases")
}

async fn cases(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    Query(q): Query<pages::CasesQuery>,
    headers: HeaderMap,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    let jobs: Vec<_> = w
        .sched
        .list_jobs(None, None, None, 0)
        .into_iter()
        .filter(|j| c.may(Perm::Read, j.spec.case_id.as_str()))
        .collect();
    html(StatusCode::OK, pages::cases(l, &c, &s.csrf, &jobs, &q))
}

/// A job the caller may `perm`, or the refusal page (audited).
#[allow(clippy::result_large_err)] // the refusal is the handler's response
fn job_for(
    w: &Web,
    c: &Caller,
    csrf: &str,
    l: Lang,
    id: &str,
    perm: Perm,
) -> Result<trawl_store::JobRecord, Response> {
    // The API's check and audit entry: one rule for both doors. Another
    // case's job is answered as a job that does not exist. (`id` is
    // canonical: every route canonicalises its path first.)
    crate::service::job_for(&w.sched, c, perm, id).map_err(|_| not_found(l, c, csrf))
}

async fn job_page(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    let id = crate::service::canonical_job_id(&id);
    let job = match job_for(&w, &c, &s.csrf, l, &id, Perm::Read) {
        Ok(j) => j,
        Err(r) => return r,
    };
    render_job(&w, l, &c, &s, job, false).await
}

/// Card numbers in full, for an investigator of the case: the viewing is
/// audited (`web.reveal_card_numbers`). Other roles are refused (audited).
async fn reveal(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    let id = crate::service::canonical_job_id(&id);
    if !same(&s.csrf, &f.csrf) {
        return csrf_refused(&w, &c, l, &id);
    }
    let job = match job_for(&w, &c, &s.csrf, l, &id, Perm::Read) {
        Ok(j) => j,
        Err(r) => return r,
    };
    if c.role != crate::auth::Role::Investigator {
        w.sched.audit(
            &c,
            "denied",
            &id,
            job.spec.case_id.as_str(),
            "web: revealing card numbers is for investigators",
        );
        return refusal(
            StatusCode::FORBIDDEN,
            l,
            &c,
            &s.csrf,
            l.t("forbidden_title"),
            l.t("reveal_refused"),
        );
    }
    w.sched.audit(
        &c,
        "web.reveal_card_numbers",
        &id,
        job.spec.case_id.as_str(),
        "web: card numbers shown in full",
    );
    render_job(&w, l, &c, &s, job, true).await
}

async fn render_job(
    w: &Web,
    l: Lang,
    c: &Caller,
    s: &Session,
    job: trawl_store::JobRecord,
    revealed: bool,
) -> Response {
    let id = job.job_id.clone();
    let summary = if job.state.is_final() {
        let sched = w.sched.clone();
        let id2 = id.clone();
        tokio::task::spawn_blocking(move || pages::summarize(&sched, &id2))
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let wire = crate::service::wire_job(&job);
    let tasks = w.sched.tasks_of(&id);
    let view = pages::JobView {
        job: &job,
        wire: &wire,
        tasks: &tasks,
        summary: summary.as_ref(),
        may_cancel: c.may(Perm::Cancel, job.spec.case_id.as_str()),
        may_reveal: c.role == crate::auth::Role::Investigator,
        revealed,
    };
    html(StatusCode::OK, pages::job(l, c, &s.csrf, &view))
}

/// A job's throughput chart (SVG), live while it runs.
async fn job_throughput(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    let id = crate::service::canonical_job_id(&id);
    let job = match job_for(&w, &c, &s.csrf, l, &id, Perm::Read) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let tasks = w.sched.tasks_of(&id);
    let (svg, _) = pages::throughput_chart(l, &pages::throughput_series(&job, &tasks));
    svg_response(svg)
}

/// The pool's load chart (SVG).
async fn pool_load(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    if !c.may(Perm::ReadPool, "") {
        return forbidden(l, &c, &s.csrf);
    }
    let (svg, _) = pages::load_chart(l, &w.sched.pool_view());
    svg_response(svg)
}

fn svg_response(svg: String) -> Response {
    let mut r = (StatusCode::OK, svg).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Live progress as server-sent events: one JSON object per update (twice
/// a second, and on every change), until the job ends.
async fn job_events(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let (l, c, s) = signed_in!(w, headers, peer);
    let id = crate::service::canonical_job_id(&id);
    if let Err(r) = job_for(&w, &c, &s.csrf, l, &id, Perm::Read) {
        return r;
    }
    let sched = w.sched.clone();
    let stream = futures::stream::unfold((sched, id, false), move |(sched, id, done)| {
        let c = c.clone();
        async move {
            if done {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let job = sched.job(&id).ok()?;
            // A token revoked (or expired) since the page opened ends the
            // stream.
            if !sched.still_may(&c, Perm::Read, job.spec.case_id.as_str()) {
                return None;
            }
            let fin = job.state.is_final();
            let wire = crate::service::wire_job(&job);
            let ev = Event::default().data(pages::progress_json(l, &job, &wire).to_string());
            Some((Ok::<_, std::convert::Infallible>(ev), (sched, id, fin)))
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn cancel(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    let id = crate::service::canonical_job_id(&id);
    if !same(&s.csrf, &f.csrf) {
        return csrf_refused(&w, &c, l, &id);
    }
    if let Err(r) = job_for(&w, &c, &s.csrf, l, &id, Perm::Cancel) {
        return r;
    }
    let _ = w.sched.cancel(&id, "cancelled from the dashboard", &c);
    see_other(&format!("/jobs/{}", pages::url_part(&id)))
}

async fn download(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    let id = crate::service::canonical_job_id(&id);
    let job = match job_for(&w, &c, &s.csrf, l, &id, Perm::Read) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let sched = w.sched.clone();
    let id2 = id.clone();
    let made = tokio::task::spawn_blocking(move || archive::report_tar(&sched, &id2)).await;
    match made {
        Ok(Ok(file)) => {
            w.sched.audit(
                &c,
                "results.get",
                &id,
                job.spec.case_id.as_str(),
                "web: report archive",
            );
            let f = match tokio::fs::File::open(file.path()).await {
                Ok(f) => f,
                Err(e) => {
                    return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
                }
            };
            let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(f));
            let mut r = (StatusCode::OK, body).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-tar"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"trawl-{}.tar\"",
                pages::url_part(&id)
            )) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            // The temporary file is unlinked now; the open handle streams it.
            drop(file);
            r
        }
        Ok(Err(e)) => (StatusCode::CONFLICT, esc(&e)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn pool(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    if !c.may(Perm::ReadPool, "") {
        return forbidden(l, &c, &s.csrf);
    }
    let hb = w.sched.config().heartbeat_ms as i64;
    html(
        StatusCode::OK,
        pages::pool(l, &c, &s.csrf, &w.sched.pool_view(), hb),
    )
}

async fn indicators(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let (l, c, s) = signed_in!(w, headers, peer);
    let rows = indicator_rows(&w, &c).await;
    html(StatusCode::OK, pages::indicators(l, &c, &s.csrf, &rows))
}

async fn indicators_csv(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let (_l, c, _s) = signed_in!(w, headers, peer);
    let rows = indicator_rows(&w, &c).await;
    let mut r = (StatusCode::OK, pages::indicators_csv(&rows)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"trawl-indicators.csv\""),
    );
    r
}

async fn indicator_rows(w: &Web, c: &Caller) -> Vec<pages::IndicatorRow> {
    let jobs: Vec<_> = w
        .sched
        .list_jobs(None, None, None, 0)
        .into_iter()
        .filter(|j| c.may(Perm::Read, j.spec.case_id.as_str()))
        .collect();
    let sched = w.sched.clone();
    tokio::task::spawn_blocking(move || pages::indicator_rows(&sched, &jobs))
        .await
        .unwrap_or_default()
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, ty) = match name.as_str() {
        "app.css" => (pages::CSS, "text/css; charset=utf-8"),
        "app.js" => (pages::JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "").into_response(),
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    r
}

fn router(w: Web) -> axum::Router {
    axum::Router::new()
        .route("/", get(root))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/cases", get(cases))
        .route("/jobs/{id}", get(job_page))
        .route("/jobs/{id}/events", get(job_events))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/jobs/{id}/reveal", post(reveal))
        .route("/jobs/{id}/throughput.svg", get(job_throughput))
        .route("/pool/load.svg", get(pool_load))
        .route("/jobs/{id}/report.tar", get(download))
        .route("/pool", get(pool))
        .route("/indicators", get(indicators))
        .route("/indicators.csv", get(indicators_csv))
        .route("/assets/{name}", get(asset))
        .with_state(w)
}

/// Serves the dashboard on `listener` until `shutdown`: HTTPS with the
/// scheduler's certificate. Refuses an uninitialised scheduler (no users,
/// no TLS: nobody could sign in safely).
///
/// # Errors
/// An uninitialised scheduler, or the TLS identity failing to load.
pub async fn serve(
    sched: Arc<Scheduler>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(a) = sched.authenticator() else {
        anyhow::bail!(
            "the dashboard needs an initialised scheduler (`trawl-scheduler init`): its users sign in with their tokens over TLS"
        );
    };
    let acceptor = a.tls_acceptor_http()?;
    let w = Web {
        sched: sched.clone(),
        sessions: Arc::default(),
    };
    let app = router(w);
    // The gRPC port's TLS accept loop: handshakes on their own tasks,
    // refused ones audited.
    let mut incoming =
        crate::server::tls_incoming(listener, acceptor, sched.clone(), shutdown.clone(), true);
    while let Some(Ok(tls)) = tokio_stream::StreamExt::next(&mut incoming).await {
        let peer = tls
            .get_ref()
            .0
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "unknown".into());
        let app = app.clone().layer(Extension(Peer(peer)));
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {}
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<script>alert(\"x\")</script> & 'q'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"
        );
    }

    #[test]
    fn planted_script_in_names_and_features_is_escaped() {
        let c = Caller {
            user: "<b>ivy</b>".into(),
            role: Role::Investigator,
            cases: vec!["A".into()],
            peer: String::new(),
        };
        let mut job: trawl_store::JobRecord = serde_json::from_value(serde_json::json!({
            "job_id": "J000001", "seq": 1,
            "spec": serde_json::to_value(trawl_core::JobSpec::new(
                trawl_core::CaseId::new("A").unwrap(),
                trawl_core::spec::EvidenceRef::Paths(vec!["/x".into()]),
                trawl_core::spec::AnalysisSet::default(),
            )).unwrap(),
            "submitter": "<script>x</script>", "state": "completed", "error": "",
            "created_ms": 1, "started_ms": 1, "finished_ms": 2, "evidence": null, "plan": null,
            "progress": {"bytes_total": 1, "bytes_done": 1, "tasks_total": 1, "tasks_done": 1,
                          "tasks_failed": 0, "findings": {"<script>k</script>": 1}},
            "limitations": [], "version": 1
        }))
        .expect("a job record");
        job.spec.evidence_name = "<script>alert(1).dd".into();
        let summary = pages::Summary {
            top_features: vec![
                ("find".into(), "<script>alert(\"xss\")</script>".into(), 2),
                ("ccn".into(), "4111111111111111".into(), 2),
            ],
            yara: vec![("<ns>".into(), "<rule>".into(), 1)],
            ..Default::default()
        };
        let wire = crate::service::wire_job(&job);
        let view = |revealed| pages::JobView {
            job: &job,
            wire: &wire,
            tasks: &[],
            summary: Some(&summary),
            may_cancel: true,
            may_reveal: true,
            revealed,
        };
        let page = pages::job(Lang::En, &c, "tok", &view(false));
        // Card numbers masked unless revealed.
        assert!(page.contains("411111••••••1111"), "{page}");
        assert!(!page.contains("4111111111111111"), "{page}");
        assert!(page.contains("id=\"reveal\""), "{page}");
        let shown = pages::job(Lang::En, &c, "tok", &view(true));
        assert!(shown.contains("4111111111111111"));
        // French: no English word of the table, no missing key.
        let fr = pages::job(Lang::Fr, &c, "tok", &view(false));
        assert!(!fr.contains(i18n::MISSING), "{fr}");
        assert!(fr.contains("numéros de carte"), "{fr}");
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<script>x"), "{page}");
        assert!(!page.contains("<b>ivy"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1).dd"));
        assert!(page.contains("&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;"));
        let list = pages::cases(Lang::Fr, &c, "tok", &[job], &Default::default());
        assert!(
            list.contains("Affaires") && !list.contains("<script>x"),
            "{list}"
        );
        // The only script element is the served asset.
        assert_eq!(page.matches("<script").count(), 1);
    }
}
