//! Ops endpoints outside /api/v1: worker health and the check queue.
//!
//! Upstream protects these with the UI login (when a password is set), not the API key. This
//! port has no UI login yet, so they are open; they must move behind it once it exists.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use changewatch_store::{CheckJob, Kind};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, json_response};
use crate::extract::{query_count, truthy};
use crate::state::AppState;
use crate::stored::decode_watch;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/worker-health", get(worker_health))
        .route("/queue-status", get(queue_status))
        .route("/queue.json", get(queue_json))
}

/// `GET /healthz`, open: what a container's `HEALTHCHECK` and a load balancer ask. 200 while
/// the store answers and every checker worker runs; 503 otherwise. It says nothing about the
/// watches, so it needs no login. Embedded mode's server routes it (`changewatch serve`); the
/// push service of AWS mode has its own, which judges its stream reader.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let (configured, alive) = match &state.workers {
        Some(w) => (w.configured(), w.alive()),
        None => (0, 0),
    };
    let (code, body) = match state.settings().await {
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unhealthy", "message": format!("the store does not answer: {e}")}),
        ),
        Ok(_) if alive < configured => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "degraded", "message": format!("{alive} of {configured} workers are running")}),
        ),
        Ok(_) => (
            StatusCode::OK,
            json!({"status": "healthy", "workers": alive}),
        ),
    };
    json_response(code, &body)
}

/// Upstream's priority bands: 1 is a manual recheck, 5 a clone, anything above 100 an epoch
/// (a scheduled check).
const PRIO_IMMEDIATE: i64 = 1;
const PRIO_CLONE: i64 = 5;
const PRIO_SCHEDULED_ABOVE: i64 = 100;

/// Queues above this size are paged by default, as upstream does, to keep the answer small.
const AUTO_LIMIT_ABOVE: usize = 100;
const AUTO_LIMIT: usize = 50;

/// This tenant's waiting jobs in run order.
async fn jobs(state: &AppState) -> Result<Vec<CheckJob>, ApiError> {
    Ok(state.queued_jobs().await?)
}

async fn worker_health(State(state): State<AppState>) -> Response {
    let (configured, alive, running) = match &state.workers {
        Some(w) => (w.configured(), w.alive(), w.running()),
        None => (0, 0, Vec::new()),
    };
    let mut health = Map::new();
    if alive >= configured {
        health.insert("status".into(), json!("healthy"));
        health.insert(
            "message".into(),
            json!(format!("All {configured} workers are running")),
        );
    } else {
        health.insert("status".into(), json!("degraded"));
        health.insert("dead_workers".into(), json!(configured - alive));
        health.insert(
            "message".into(),
            json!(format!("{alive} of {configured} workers are running")),
        );
    }
    health.insert("expected_count".into(), json!(configured));
    health.insert("actual_count".into(), json!(alive));
    json_response(
        StatusCode::OK,
        &json!({
            "status": "success",
            "worker_status": {
                "worker_type": "async",
                "worker_count": alive,
                "running_uuids": running,
                "active_threads": alive,
            },
            "health_check": Value::Object(health),
            "expected_workers": configured,
        }),
    )
}

fn summary(jobs: &[CheckJob]) -> Value {
    let mut breakdown: BTreeMap<String, usize> = BTreeMap::new();
    for j in jobs {
        *breakdown.entry(j.priority.to_string()).or_default() += 1;
    }
    let count = |f: &dyn Fn(i64) -> bool| jobs.iter().filter(|j| f(j.priority)).count();
    json!({
        "total_items": jobs.len(),
        "priority_breakdown": breakdown,
        "immediate_items": count(&|p| p == PRIO_IMMEDIATE),
        "clone_items": count(&|p| p == PRIO_CLONE),
        "scheduled_items": count(&|p| p > PRIO_SCHEDULED_ABOVE),
        "min_priority": jobs.iter().map(|j| j.priority).min(),
        "max_priority": jobs.iter().map(|j| j.priority).max(),
    })
}

async fn queue_status(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    // Every parameter is checked before any answer is chosen, so none is silently ignored.
    let offset = query_count(&q, "offset")?.unwrap_or(0);
    let limit = query_count(&q, "limit")?;
    let jobs = jobs(&state).await?;
    if let Some(uuid) = q.get("uuid").filter(|u| !u.is_empty()) {
        let found = jobs.iter().position(|j| &j.watch_id == uuid);
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "status": "success",
                "uuid": uuid,
                "queue_position": {
                    "position": found,
                    "total_items": jobs.len(),
                    "priority": found.map(|i| jobs[i].priority),
                    "found": found.is_some(),
                },
            }),
        ));
    }
    if truthy(q.get("summary")) {
        return Ok(json_response(
            StatusCode::OK,
            &json!({"status": "success", "queue_summary": summary(&jobs)}),
        ));
    }
    let limit = limit.or((jobs.len() > AUTO_LIMIT_ABOVE).then_some(AUTO_LIMIT));
    let items: Vec<Value> = jobs
        .iter()
        .enumerate()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|(i, j)| json!({"uuid": j.watch_id, "position": i, "priority": j.priority}))
        .collect();
    let returned = items.len();
    let has_more = offset.saturating_add(returned) < jobs.len();
    let note = has_more.then(|| {
        format!(
            "Showing {returned} of {} items (offset {offset})",
            jobs.len()
        )
    });
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "status": "success",
            "queue_size": jobs.len(),
            "queued_data": {
                "items": items,
                "total_items": jobs.len(),
                "returned_items": returned,
                "has_more": has_more,
                "note": note,
            },
        }),
    ))
}

fn priority_label(p: i64) -> &'static str {
    match p {
        PRIO_IMMEDIATE => "immediate",
        PRIO_CLONE => "clone",
        _ => "scheduled",
    }
}

async fn queue_json(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let settings = state.settings().await?;
    let per_page = usize::try_from(settings.application.pager_size)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(AUTO_LIMIT);
    let page = query_count(&q, "page")?.filter(|p| *p > 0).unwrap_or(1);
    let jobs = jobs(&state).await?;
    let mut briefs: HashMap<String, Value> = HashMap::new();
    for item in state.store.list(&state.tenant, Kind::Watch).await? {
        let w = decode_watch(&item)?;
        briefs.insert(
            item.key.id.clone(),
            json!({"uuid": item.key.id, "url": w.url, "title": w.title}),
        );
    }
    let brief = |uuid: &str| -> Map<String, Value> {
        match briefs.get(uuid) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::from_iter([("uuid".to_string(), json!(uuid))]),
        }
    };
    let running: Vec<Value> = state
        .workers
        .as_ref()
        .map(|w| w.running())
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let mut b = brief(u);
            b.insert("started_at".into(), Value::Null);
            Value::Object(b)
        })
        .collect();
    let queued: Vec<Value> = jobs
        .iter()
        .enumerate()
        // A page number from the query can be anything up to usize::MAX.
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|(i, j)| {
            let mut b = brief(&j.watch_id);
            b.insert("position".into(), json!(i));
            b.insert("priority".into(), json!(j.priority));
            b.insert("priority_label".into(), json!(priority_label(j.priority)));
            b.insert("enqueued_at".into(), json!(j.enqueued_at));
            Value::Object(b)
        })
        .collect();
    let s = summary(&jobs);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "worker_count": state.workers.as_ref().map_or(0, |w| w.alive()),
            "running_count": running.len(),
            "queued_count": jobs.len(),
            "summary": {
                "immediate": s["immediate_items"],
                "clone": s["clone_items"],
                "scheduled": s["scheduled_items"],
                "priority_breakdown": s["priority_breakdown"],
            },
            "running": running,
            "queued": queued,
            "page": page,
            "per_page": per_page,
            "total_pages": jobs.len().div_ceil(per_page).max(1),
        }),
    ))
}
