//! The dashboard's routes. Each handler names what it needs through the
//! extractors of [`super::extract`] (a signed-in caller, a job it may see
//! or cancel, a form with the session's CSRF token) and starts from there.

use super::extract::{
    COOKIE, Cancel, JobAccess, JobPost, PRELOGIN, Posted, SESSION_MS, Session, SignedIn,
    random_hex, same, set_cookie,
};
use super::i18n::Lang;
use super::{Peer, Web, archive, csrf_refused_login, forbidden, html, pages, see_other, svg};
use crate::auth::{Perm, Role};
use crate::core::Caller;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

pub(super) async fn login_form(l: Lang) -> Response {
    let pre = random_hex();
    let mut r = html(StatusCode::OK, pages::login(l, &pre, None));
    set_cookie(&mut r, PRELOGIN, &pre, 600);
    r
}

#[derive(serde::Deserialize)]
pub(super) struct LoginForm {
    token: String,
    csrf: String,
}

pub(super) async fn login(
    State(w): State<Web>,
    Extension(peer): Extension<Peer>,
    l: Lang,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    // Login CSRF: the form must come from our own page (double submit).
    let pre = super::extract::cookie(&headers, PRELOGIN).unwrap_or_default();
    if pre.is_empty() || !same(&pre, &f.csrf) {
        w.sched
            .audit_refusal("", &peer.0, "web sign-in: missing or forged CSRF token");
        return csrf_refused_login(l);
    }
    let Some(a) = w.sched.authenticator() else {
        return super::unauthorized(l);
    };
    let token = f.token.trim().to_string();
    let bearer = ["Bearer ", &token].concat();
    match a.authenticate(Some(&bearer), None, &peer.0) {
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
            let why = ["web sign-in: ", &e.reason].concat();
            w.sched.audit_refusal(&e.who, &peer.0, &why);
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

pub(super) async fn logout(State(w): State<Web>, Posted(who, _): Posted) -> Response {
    w.sessions.lock().remove(&who.id);
    let mut r = see_other("/login");
    set_cookie(&mut r, COOKIE, "", 0);
    r
}

pub(super) async fn root() -> Response {
    see_other("/cases")
}

/// The jobs the caller may read.
fn readable_jobs(w: &Web, c: &Caller) -> Vec<trawl_store::JobRecord> {
    w.sched
        .list_jobs(None, None, None, 0)
        .into_iter()
        .filter(|j| c.may(Perm::Read, j.spec.case_id.as_str()))
        .collect()
}

pub(super) async fn cases(
    State(w): State<Web>,
    who: SignedIn,
    Query(q): Query<pages::CasesQuery>,
) -> Response {
    let jobs = readable_jobs(&w, &who.caller);
    html(
        StatusCode::OK,
        pages::cases(who.lang, &who.caller, &who.session.csrf, &jobs, &q),
    )
}

pub(super) async fn job_page(State(w): State<Web>, a: JobAccess) -> Response {
    render_job(&w, &a.who, a.job, false).await
}

/// Card numbers in full, for an investigator of the case: the viewing is
/// audited (`web.reveal_card_numbers`). Other roles are refused (audited).
pub(super) async fn reveal(State(w): State<Web>, p: JobPost) -> Response {
    let (who, job) = (p.who, p.job);
    let (c, l) = (&who.caller, who.lang);
    let case = job.spec.case_id.as_str();
    if c.role != Role::Investigator {
        w.sched.audit(
            c,
            "denied",
            &job.job_id,
            case,
            "web: revealing card numbers is for investigators",
        );
        return who.refusal(
            StatusCode::FORBIDDEN,
            l.t("forbidden_title"),
            l.t("reveal_refused"),
        );
    }
    w.sched.audit(
        c,
        "web.reveal_card_numbers",
        &job.job_id,
        case,
        "web: card numbers shown in full",
    );
    render_job(&w, &who, job, true).await
}

async fn render_job(
    w: &Web,
    who: &SignedIn,
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
    let c = &who.caller;
    let view = pages::JobView {
        job: &job,
        wire: &wire,
        tasks: &tasks,
        summary: summary.as_ref(),
        may_cancel: c.may(Perm::Cancel, job.spec.case_id.as_str()),
        may_reveal: c.role == Role::Investigator,
        revealed,
    };
    html(
        StatusCode::OK,
        pages::job(who.lang, c, &who.session.csrf, &view),
    )
}

/// A job's file-system files (search, filters, pages), once it is
/// complete.
pub(super) async fn job_files(
    State(w): State<Web>,
    a: JobAccess,
    Query(q): Query<pages::FilesQuery>,
) -> Response {
    let (who, job) = (a.who, a.job);
    let files = if job.state.is_final() {
        let sched = w.sched.clone();
        let id = job.job_id.clone();
        tokio::task::spawn_blocking(move || {
            let page = sched.results(&id).ok()?;
            crate::results::from_pages(vec![page])
                .ok()
                .map(|(_, r)| r.files)
        })
        .await
        .ok()
        .flatten()
    } else {
        None
    };
    html(
        StatusCode::OK,
        pages::files(
            who.lang,
            &who.caller,
            &who.session.csrf,
            &job,
            files.as_deref(),
            &q,
        ),
    )
}

/// A job's throughput chart (SVG), live while it runs.
pub(super) async fn job_throughput(State(w): State<Web>, a: JobAccess) -> Response {
    let tasks = w.sched.tasks_of(&a.job.job_id);
    let series = pages::throughput_series(&a.job, &tasks);
    svg(pages::throughput_chart(a.who.lang, &series).0)
}

/// The pool's load chart (SVG).
pub(super) async fn pool_load(State(w): State<Web>, who: SignedIn) -> Response {
    if !who.caller.may(Perm::ReadPool, "") {
        return forbidden(&who);
    }
    svg(pages::load_chart(who.lang, &w.sched.pool_view()).0)
}

/// Live progress as server-sent events: one JSON object per update (twice
/// a second, and on every change), until the job ends.
pub(super) async fn job_events(State(w): State<Web>, a: JobAccess) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let (l, c) = (a.who.lang, a.who.caller);
    let sched = w.sched.clone();
    let stream = futures::stream::unfold((sched, a.job.job_id, false), move |(sched, id, done)| {
        let c = c.clone();
        async move {
            if done {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let job = sched.job(&id).ok()?;
            // A token revoked (or expired) since the page opened ends
            // the stream.
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

pub(super) async fn cancel(State(w): State<Web>, p: JobPost<Cancel>) -> Response {
    let id = &p.job.job_id;
    let _ = w
        .sched
        .cancel(id, "cancelled from the dashboard", &p.who.caller);
    see_other(&["/jobs/", &pages::url_part(id)].concat())
}

pub(super) async fn download(State(w): State<Web>, a: JobAccess) -> Response {
    let id = a.job.job_id.clone();
    let sched = w.sched.clone();
    let id2 = id.clone();
    let made = tokio::task::spawn_blocking(move || archive::report_tar(&sched, &id2)).await;
    match made {
        Ok(Ok(file)) => {
            w.sched.audit(
                &a.who.caller,
                "results.get",
                &id,
                a.job.spec.case_id.as_str(),
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
            let disposition = [
                "attachment; filename=\"trawl-",
                &pages::url_part(&id),
                ".tar\"",
            ];
            if let Ok(v) = HeaderValue::from_str(&disposition.concat()) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            // The temporary file is unlinked now; the open handle streams it.
            drop(file);
            r
        }
        // The reason, escaped: it names what the results hold.
        Ok(Err(e)) => (StatusCode::CONFLICT, maud::html! { (e) }.into_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

pub(super) async fn pool(State(w): State<Web>, who: SignedIn) -> Response {
    if !who.caller.may(Perm::ReadPool, "") {
        return forbidden(&who);
    }
    let hb = w.sched.config().heartbeat_ms as i64;
    html(
        StatusCode::OK,
        pages::pool(
            who.lang,
            &who.caller,
            &who.session.csrf,
            &w.sched.pool_view(),
            hb,
        ),
    )
}

pub(super) async fn indicators(State(w): State<Web>, who: SignedIn) -> Response {
    let rows = indicator_rows(&w, &who.caller).await;
    html(
        StatusCode::OK,
        pages::indicators(who.lang, &who.caller, &who.session.csrf, &rows),
    )
}

async fn indicator_rows(w: &Web, c: &Caller) -> Vec<pages::IndicatorRow> {
    let jobs = readable_jobs(w, c);
    let sched = w.sched.clone();
    tokio::task::spawn_blocking(move || pages::indicator_rows(&sched, &jobs))
        .await
        .unwrap_or_default()
}

pub(super) async fn asset(Path(name): Path<String>) -> Response {
    let (body, ty) = match name.as_str() {
        "app.css" => (pages::CSS, "text/css; charset=utf-8"),
        "app.js" => (pages::JS, "text/javascript; charset=utf-8"),
        "print.css" => return super::threat::print_css_response(),
        _ => return (StatusCode::NOT_FOUND, "").into_response(),
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    r
}
