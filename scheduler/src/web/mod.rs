//! The case officers' web dashboard, served by the scheduler itself
//! (`--http ADDR`): server-rendered pages, a little JavaScript, every asset
//! served from here (no CDN).
//!
//! Sign-in takes the same bearer tokens as the gRPC API and gives a session
//! cookie (`HttpOnly; Secure; SameSite=Strict`); every form carries the
//! session's CSRF token; each page checks the same per-case access as the
//! API ([`Caller::may`]); refusals are audited. Handlers take what they
//! need as extractors ([`extract`]). Pages are maud templates
//! ([`pages`], [`charts`]): every value from evidence, users or rules is
//! HTML-escaped by the template engine.

mod archive;
mod charts;
mod extract;
mod handlers;
mod i18n;
mod intel_handlers;
mod pages;
mod threat;

/// Every text of the dashboard: (key, English, French).
pub use i18n::TEXTS;
pub use threat::threat_report;

use crate::core::{Caller, Scheduler};
use axum::extract::Extension;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use extract::{Session, SignedIn};
use i18n::Lang;
use maud::Markup;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Web {
    sched: Arc<Scheduler>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

/// The peer of a connection.
#[derive(Clone, Debug)]
struct Peer(String);

/// Control characters (but line feeds and tabs) shown as U+FFFD: a value
/// from evidence cannot put them in a page.
fn no_controls(s: String) -> String {
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\n' && c != '\t' {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect()
    } else {
        s
    }
}

/// A page: HTML under a strict Content-Security-Policy, never cached.
fn html(status: StatusCode, page: Markup) -> Response {
    let mut r = (status, no_controls(page.into_string())).into_response();
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

/// A chart on its own (`image/svg+xml`), never cached.
fn svg(chart: Markup) -> Response {
    let mut r = (StatusCode::OK, no_controls(chart.into_string())).into_response();
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

/// A redirect after a form (303) to a path of ours.
fn see_other(to: &str) -> Response {
    let mut r = (StatusCode::SEE_OTHER, "").into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// 401: not signed in, with a way to sign in.
fn unauthorized(l: Lang) -> Response {
    html(StatusCode::UNAUTHORIZED, pages::unauthorized(l))
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
    html(status, pages::refusal(l, who, csrf, title, text))
}

fn forbidden(who: &SignedIn) -> Response {
    let l = who.lang;
    who.refusal(
        StatusCode::FORBIDDEN,
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

/// 403 for a form without its CSRF token (the caller audits it).
fn csrf_refused(l: Lang, who: Option<&Caller>) -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::message(l, who, l.t("forbidden_title"), l.t("csrf")),
    )
}

/// 403 for a sign-in form that did not come from our page.
fn csrf_refused_login(l: Lang) -> Response {
    csrf_refused(l, None)
}

fn router(w: Web) -> axum::Router {
    use handlers::*;
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
        .route("/jobs/{id}/files", get(job_files))
        .route("/pool/load.svg", get(pool_load))
        .route("/jobs/{id}/report.tar", get(download))
        .route("/pool", get(pool))
        .route("/indicators", get(indicators))
        .route("/indicators.csv", get(threat::indicators_csv))
        .route("/report", get(threat::report_page))
        .route("/report/{name}", get(threat::report_csv))
        .route("/links", get(intel_handlers::links))
        .route("/alerts", get(intel_handlers::alerts))
        .route("/alerts/events", get(intel_handlers::alert_events))
        .route("/alerts/{id}/seen", post(intel_handlers::alert_seen))
        .route("/alerts/{id}/dismiss", post(intel_handlers::alert_dismiss))
        .route("/flashes", get(intel_handlers::flashes))
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

    #[test]
    fn control_characters_never_reach_a_page() {
        let page = maud::html! { p title=("a\u{1b}[31m") { ("x\u{0}y\r\nz\tw") } };
        assert_eq!(
            no_controls(page.into_string()),
            "<p title=\"a\u{FFFD}[31m\">x\u{FFFD}y\u{FFFD}\nz\tw</p>"
        );
        let escaped = maud::html! { ("<script>alert(\"x\")</script> & 'q'") }.into_string();
        assert_eq!(
            escaped,
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'q'"
        );
    }
}
