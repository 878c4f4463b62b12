//! The lab's memory in the dashboard: links between cases, alerts (with
//! their live events) and flashes. Every answer comes from the
//! scheduler's own calls, which decide and audit as for the API:
//! [`Scheduler::links`] (each case revealed audited), `alerts` /
//! `may_see_alert`, `update_alert`, `flashes`.
//!
//! [`Scheduler::links`]: crate::core::Scheduler::links

use super::extract::{Posted, SignedIn};
use super::{Web, html, pages, see_other};
use crate::auth::Perm;
use crate::core::{Caller, Scheduler};
use crate::error::SchedError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use trawl_intel::flash::{AlertRecord, AlertState};

/// Longest case or alert id taken from a request.
const MAX_ID: usize = 128;
/// Longest dismissal reason.
const MAX_REASON: usize = 4096;

fn bad_id(s: &str) -> bool {
    s.len() > MAX_ID || s.chars().any(char::is_control)
}

/// 400 with a sentence.
fn bad_request(who: &SignedIn, text: &str) -> Response {
    let l = who.lang;
    who.refusal(StatusCode::BAD_REQUEST, l.t("bad_request"), text)
}

/// 500 with the scheduler's reason.
fn failed(who: &SignedIn, e: &SchedError) -> Response {
    tracing::error!(user = %who.caller.user, error = %e, "dashboard: the lab's memory");
    let l = who.lang;
    who.refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        l.t("error"),
        l.t("alert_failed"),
    )
}

/// `GET /links?case=C`: the cases linked to C, for a reader of C (the
/// API's refusal otherwise, audited); without a case, the whole lab for
/// an admin, else the caller's cases to choose from.
pub(super) async fn links(
    State(w): State<Web>,
    who: SignedIn,
    Query(q): Query<pages::LinksQuery>,
) -> Response {
    let (l, c, csrf) = (who.lang, &who.caller, who.session.csrf.as_str());
    let case = q.case.trim().to_string();
    if bad_id(&case) {
        return bad_request(&who, l.t("bad_case"));
    }
    if w.sched.subscribe_alerts().is_none() {
        return html(
            StatusCode::OK,
            pages::links(l, c, csrf, &pages::LinksView::Off),
        );
    }
    if case.is_empty() && !c.all_cases() {
        return html(
            StatusCode::OK,
            pages::links(l, c, csrf, &pages::LinksView::Choose(&c.cases)),
        );
    }
    if !case.is_empty() && crate::service::authorize(&w.sched, c, Perm::Read, &case, &case).is_err()
    {
        return who.refusal(
            StatusCode::FORBIDDEN,
            l.t("forbidden_title"),
            l.t("forbidden_case"),
        );
    }
    let sched = w.sched.clone();
    let (caller, asked) = (c.clone(), case.clone());
    let found = tokio::task::spawn_blocking(move || sched.links(&caller, &asked)).await;
    match found {
        Ok(Ok(links)) => html(
            StatusCode::OK,
            pages::links(
                l,
                c,
                csrf,
                &pages::LinksView::Links {
                    case: &case,
                    links: &links,
                },
            ),
        ),
        Ok(Err(SchedError::FailedPrecondition(_))) => html(
            StatusCode::OK,
            pages::links(l, c, csrf, &pages::LinksView::Off),
        ),
        Ok(Err(e)) => failed(&who, &e),
        Err(e) => failed(&who, &SchedError::Internal(e.to_string())),
    }
}

/// The alerts `c` may see with these filters, newest first (`None`: the
/// index is off).
async fn visible_alerts(
    sched: &Arc<Scheduler>,
    c: &Caller,
    case: &str,
    state: &str,
) -> Result<Option<Vec<AlertRecord>>, SchedError> {
    let (sched, c, case, state) = (
        sched.clone(),
        c.clone(),
        case.to_string(),
        state.to_string(),
    );
    tokio::task::spawn_blocking(
        move || match sched.alerts(&c, &case, &state, 0, usize::MAX) {
            Ok(mut v) => {
                v.reverse();
                v.truncate(pages::ALERTS_SHOWN);
                Ok(Some(v))
            }
            Err(SchedError::FailedPrecondition(_)) => Ok(None),
            Err(e) => Err(e),
        },
    )
    .await
    .map_err(|e| SchedError::Internal(e.to_string()))?
}

/// The alerts page (or its table alone, `fragment=1`), with an error
/// from a form and its status.
async fn alerts_page(
    w: &Web,
    who: &SignedIn,
    q: &pages::AlertsQuery,
    error: Option<(StatusCode, &str)>,
) -> Response {
    let (l, c, csrf) = (who.lang, &who.caller, who.session.csrf.as_str());
    let list = match visible_alerts(&w.sched, c, q.case.trim(), &q.state).await {
        Ok(list) => list,
        Err(e) => return failed(who, &e),
    };
    if q.fragment == "1" {
        return html(
            StatusCode::OK,
            pages::alerts_table(l, c, csrf, list.as_deref().unwrap_or_default()),
        );
    }
    let (status, text) = error.map_or((StatusCode::OK, None), |(s, t)| (s, Some(t)));
    html(status, pages::alerts(l, c, csrf, q, list.as_deref(), text))
}

/// `GET /alerts?case=&state=`: the alerts the caller may see.
pub(super) async fn alerts(
    State(w): State<Web>,
    who: SignedIn,
    Query(q): Query<pages::AlertsQuery>,
) -> Response {
    let l = who.lang;
    if bad_id(q.case.trim()) {
        return bad_request(&who, l.t("bad_case"));
    }
    if !matches!(q.state.as_str(), "" | "new" | "seen" | "dismissed") {
        return bad_request(&who, l.t("bad_alert_state"));
    }
    alerts_page(&w, &who, &q, None).await
}

/// `POST /alerts/{id}/seen`.
pub(super) async fn alert_seen(
    State(w): State<Web>,
    Path(id): Path<String>,
    p: Posted,
) -> Response {
    update(&w, &id, "seen", p).await
}

/// `POST /alerts/{id}/dismiss` (field `reason`, required).
pub(super) async fn alert_dismiss(
    State(w): State<Web>,
    Path(id): Path<String>,
    p: Posted,
) -> Response {
    update(&w, &id, "dismissed", p).await
}

async fn update(w: &Web, id: &str, state: &str, Posted(who, form): Posted) -> Response {
    let l = who.lang;
    let q = pages::AlertsQuery::default();
    let reason = form.get("reason").trim().to_string();
    let refuse = |status, key| (status, l.t(key));
    let err = if bad_id(id) {
        Some(refuse(StatusCode::NOT_FOUND, "alert_not_found"))
    } else if reason.len() > MAX_REASON {
        Some(refuse(StatusCode::BAD_REQUEST, "bad_request"))
    } else if state == "dismissed" && reason.is_empty() {
        Some(refuse(StatusCode::BAD_REQUEST, "reason_needed"))
    } else {
        let sched = w.sched.clone();
        let (c, id, st, r) = (
            who.caller.clone(),
            id.to_string(),
            state.to_string(),
            reason.clone(),
        );
        let done = tokio::task::spawn_blocking(move || sched.update_alert(&c, &id, &st, &r)).await;
        match done {
            Ok(Ok(_)) => None,
            Ok(Err(SchedError::NotFound(_))) => {
                Some(refuse(StatusCode::NOT_FOUND, "alert_not_found"))
            }
            Ok(Err(SchedError::InvalidArgument(_))) => {
                Some(refuse(StatusCode::CONFLICT, "alert_transition"))
            }
            Ok(Err(SchedError::FailedPrecondition(_))) => {
                Some(refuse(StatusCode::CONFLICT, "intel_off"))
            }
            Ok(Err(e)) => return failed(&who, &e),
            Err(e) => return failed(&who, &SchedError::Internal(e.to_string())),
        }
    };
    match err {
        None => see_other("/alerts"),
        Some(e) => alerts_page(w, &who, &q, Some(e)).await,
    }
}

/// How many new alerts `c` may see.
fn new_count(sched: &Scheduler, c: &Caller) -> usize {
    sched
        .alerts(c, "", "new", 0, usize::MAX)
        .map_or(0, |v| v.len())
}

/// `GET /alerts/events`: server-sent events of the alert changes the
/// caller may see. The first event is the count of new alerts; each later
/// one names the changed alert with the count again. The caller is
/// looked up again for each change and every few seconds: a revoked or
/// expired token ends the stream. No index: 204 (the browser stops
/// asking).
pub(super) async fn alert_events(State(w): State<Web>, who: SignedIn) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let Some(rx) = w.sched.subscribe_alerts() else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let data = |v: serde_json::Value| {
        Ok::<_, std::convert::Infallible>(Event::default().data(v.to_string()))
    };
    let start = (w.sched.clone(), who.caller, rx, true);
    let stream = futures::stream::unfold(start, move |(sched, c, mut rx, first)| async move {
        if first {
            let n = new_count(&sched, &c);
            return Some((data(serde_json::json!({ "new": n })), (sched, c, rx, false)));
        }
        loop {
            let got = tokio::select! {
                a = rx.recv() => Some(a),
                _ = tokio::time::sleep(Duration::from_secs(5)) => None,
            };
            let now = sched.refresh_caller(&c)?;
            let ev = match got {
                None => continue,
                Some(Ok(a)) => {
                    if !sched.may_see_alert(&now, &a) {
                        continue;
                    }
                    serde_json::json!({
                        "new": new_count(&sched, &now),
                        "alert": a.id,
                        "case": a.case,
                        "state": a.state.name(),
                        "raised": a.state == AlertState::New,
                    })
                }
                // Some changes were missed: the count, and a reload.
                Some(Err(RecvError::Lagged(_))) => serde_json::json!({
                    "new": new_count(&sched, &now),
                    "alert": "*",
                }),
                Some(Err(RecvError::Closed)) => return None,
            };
            return Some((data(ev), (sched, c, rx, false)));
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `GET /flashes`: analysts and admins (others refused, audited as the
/// API refuses them).
pub(super) async fn flashes(State(w): State<Web>, who: SignedIn) -> Response {
    let (l, c, csrf) = (who.lang, &who.caller, who.session.csrf.as_str());
    if crate::service::authorize(&w.sched, c, Perm::PublishFlash, "", "flashes").is_err() {
        return who.refusal(
            StatusCode::FORBIDDEN,
            l.t("forbidden_title"),
            l.t("flashes_refused"),
        );
    }
    let sched = w.sched.clone();
    match tokio::task::spawn_blocking(move || sched.flashes()).await {
        Ok(Ok(list)) => html(StatusCode::OK, pages::flashes(l, c, csrf, Some(&list))),
        Ok(Err(SchedError::FailedPrecondition(_))) => {
            html(StatusCode::OK, pages::flashes(l, c, csrf, None))
        }
        Ok(Err(e)) => failed(&who, &e),
        Err(e) => failed(&who, &SchedError::Internal(e.to_string())),
    }
}
