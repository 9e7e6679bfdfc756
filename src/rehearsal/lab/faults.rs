//! Middleware of every region API: optional Basic auth (REST), injected faults (deterministic
//! per seed and request counter) and the record of mutating calls.
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::net::ConnHandle;
use super::world::{es_error, message, problem};
use super::{Api, FaultConfig, RecordEntry, Shared};

#[derive(Clone)]
pub(crate) struct RegionApi {
    pub shared: Arc<Shared>,
    pub region: usize,
    pub api: Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Error(u16),
    Drop,
    Malformed,
}

/// The fault for the `counter`-th request under this configuration.
pub fn decide(cfg: &FaultConfig, counter: u64) -> Fault {
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let x: f64 = rng.random();
    if x < cfg.drop_rate {
        Fault::Drop
    } else if x < cfg.drop_rate + cfg.error_rate {
        Fault::Error(if rng.random_bool(0.5) { 500 } else { 503 })
    } else if x < cfg.drop_rate + cfg.error_rate + cfg.malformed_rate {
        Fault::Malformed
    } else if x < cfg.drop_rate + cfg.error_rate + cfg.malformed_rate + cfg.reject_rate {
        Fault::Error(400)
    } else {
        Fault::None
    }
}

pub(crate) fn json_response(status: u16, body: &serde_json::Value, content_type: &'static str) -> Response {
    let mut resp = Response::new(Body::from(super::jsonorder::to_string(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn error_for(api: Api, status: u16, path: &str) -> Response {
    match api {
        Api::Management => {
            let (s, b) = message(status, "lab: injected fault");
            json_response(s, &b, "application/json")
        }
        Api::Rest => {
            let title = if status < 500 { "Bad Request" } else { "INTERNAL" };
            let (s, b) = problem(status, title, "lab: injected fault", path);
            json_response(s, &b, "application/problem+json")
        }
        Api::Elasticsearch => {
            let (s, b) = es_error(status, "lab_injected_fault_exception", "lab: injected fault");
            json_response(s, &b, "application/json")
        }
    }
}

fn authorized(expected: &(String, String), req: &Request) -> bool {
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", expected.0, expected.1));
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|v| v.trim() == want)
}

pub(crate) async fn middleware(
    State(ctx): State<RegionApi>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_else(|| req.uri().path().to_string());
    let shared = ctx.shared.clone();
    let time = super::cluster::fmt_ms(shared.now_ms());
    let record = |status: u16| {
        if method != Method::GET && method != Method::HEAD {
            let mut w = shared.world();
            let seq = w.record.len() as u64 + 1;
            w.record.push(RecordEntry {
                seq,
                time: time.clone(),
                region: ctx.region,
                api: ctx.api,
                method: method.to_string(),
                path: path.clone(),
                status,
            });
        }
    };

    if ctx.api == Api::Rest
        && let Some(auth) = &shared.rest_auth
        && !authorized(auth, &req)
    {
        record(401);
        let (s, b) = problem(401, "Unauthorized", "Missing or invalid credentials (HTTP Basic)", req.uri().path());
        let mut resp = json_response(s, &b, "application/problem+json");
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"camunda\""));
        return resp;
    }

    let cfg = shared.faults.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (fault, latency) = match &cfg {
        Some(c)
            if (c.apis.is_empty() || c.apis.contains(&ctx.api))
                && (c.paths.is_empty() || c.paths.iter().any(|p| req.uri().path().starts_with(p.as_str()))) =>
        {
            let n = shared.fault_counter.fetch_add(1, Ordering::SeqCst);
            (decide(c, n), c.latency_ms)
        }
        _ => (Fault::None, 0),
    };
    if latency > 0 {
        shared.clock.sleep(std::time::Duration::from_millis(latency)).await;
    }
    match fault {
        Fault::Drop => {
            record(0);
            conn.cut();
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Fault::Error(status) => {
            record(status);
            return error_for(ctx.api, status, req.uri().path());
        }
        Fault::None | Fault::Malformed => {}
    }
    let resp = next.run(req).await;
    record(resp.status().as_u16());
    if fault != Fault::Malformed {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
    let cut = bytes.len() / 2;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes.slice(..cut)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let cfg = FaultConfig { seed: 7, error_rate: 0.3, drop_rate: 0.1, malformed_rate: 0.1, ..Default::default() };
        let a: Vec<Fault> = (0..50).map(|i| decide(&cfg, i)).collect();
        let b: Vec<Fault> = (0..50).map(|i| decide(&cfg, i)).collect();
        assert_eq!(a, b);
        assert!(a.contains(&Fault::None) && a.iter().any(|f| matches!(f, Fault::Error(_))));
        let other = FaultConfig { seed: 8, ..cfg };
        assert_ne!(a, (0..50).map(|i| decide(&other, i)).collect::<Vec<_>>());
        // permanent rejections: 400, never a 5xx
        let reject = FaultConfig { seed: 7, reject_rate: 1.0, ..Default::default() };
        assert!((0..50).all(|i| decide(&reject, i) == Fault::Error(400)));
    }
}
