//! Tracing setup, Prometheus metrics and the health endpoints.
//!
//! - [`init_tracing`]: `human` or `json` logs, filtered by `RUST_LOG` (default `info`).
//! - [`Metrics`]: the worker's Prometheus metrics (prometheus-client), rendered at `/metrics`.
//! - [`Health`]: `/healthz` answers while the process lives; `/readyz` answers 200 only when the
//!   gateway answered Topology within the last [`Health::window`].
//! - [`serve`]: the axum server for the three endpoints.
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Installs the global tracing subscriber. `format` is `human` or `json`; `RUST_LOG` filters
/// (default `info`). Calling it twice is harmless (the second call is ignored).
pub fn init_tracing(format: &str) -> Result<(), String> {
    init_tracing_with_default(format, "info")
}

/// Like [`init_tracing`], with another filter when `RUST_LOG` is not set (e.g. `warn` for
/// commands whose own output is the point, such as `c8dr rehearse`).
pub fn init_tracing_with_default(format: &str, default_filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colour only on a terminal: redirected to a file or a pipe, logs carry no ANSI codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| StderrUnlessHeld).with_ansi(ansi);
    let result = match format {
        "human" => builder.try_init(),
        "json" => builder.json().with_current_span(true).with_span_list(false).try_init(),
        other => {
            return Err(format!("unknown log format {other:?}: use --log-format human or json"));
        }
    };
    // Already initialised (tests, or a second call): keep the first subscriber.
    let _ = result;
    Ok(())
}

/// Log lines written while a [`LogHold`] lives are kept and written when it ends: a question asked
/// on the terminal (`rehearse --interactive`) is never overwritten by a log line.
static LOGS_HELD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static HELD_LINES: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
/// At most this much held log output is kept; more is dropped and counted.
const HELD_MAX: usize = 1 << 20;
static HELD_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Holds log output until dropped (see [`hold_logs`]).
#[must_use = "logs are held only while the guard lives"]
pub struct LogHold(());

/// Holds every log line until the returned guard is dropped, then writes them in order.
pub fn hold_logs() -> LogHold {
    LOGS_HELD.store(true, Ordering::SeqCst);
    LogHold(())
}

impl Drop for LogHold {
    fn drop(&mut self) {
        use std::io::Write;
        let mut held = HELD_LINES.lock().unwrap_or_else(|p| p.into_inner());
        LOGS_HELD.store(false, Ordering::SeqCst);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&held);
        let dropped = HELD_DROPPED.swap(0, Ordering::SeqCst);
        if dropped > 0 {
            let _ = writeln!(err, "({dropped} bytes of log output were dropped while a question was open)");
        }
        held.clear();
    }
}

/// stderr, or the held buffer while a [`LogHold`] lives.
struct StderrUnlessHeld;

impl std::io::Write for StderrUnlessHeld {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if LOGS_HELD.load(Ordering::SeqCst) {
            let mut held = HELD_LINES.lock().unwrap_or_else(|p| p.into_inner());
            // checked again under the lock: a hold ending meanwhile has flushed already
            if LOGS_HELD.load(Ordering::SeqCst) {
                if held.len() + buf.len() <= HELD_MAX {
                    held.extend_from_slice(buf);
                } else {
                    HELD_DROPPED.fetch_add(buf.len() as u64, Ordering::SeqCst);
                }
                return Ok(buf.len());
            }
        }
        std::io::stderr().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    job_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    job_type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    rpc: String,
    kind: String,
}

type HistogramFamily = Family<TypeLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.5, 14))
}

/// The worker's metrics. Cheap to share (`Arc`); every method is lock-free or nearly.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    activated: Family<TypeLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    duration: HistogramFamily,
    in_flight: Family<TypeLabels, Gauge>,
    stream_reconnects: Family<TypeLabels, Counter>,
    gateway_errors: Family<ErrorLabels, Counter>,
    handlers: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("c8dr_worker");
        let activated = Family::<TypeLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        let in_flight = Family::<TypeLabels, Gauge>::default();
        let stream_reconnects = Family::<TypeLabels, Counter>::default();
        let gateway_errors = Family::<ErrorLabels, Counter>::default();
        registry.register("jobs_activated", "Jobs activated, by job type", activated.clone());
        registry.register(
            "jobs_handled",
            "Jobs handled, by job type and outcome (complete, fail, bpmn_error, panic)",
            handled.clone(),
        );
        registry.register("handler_duration_seconds", "Handler run time, by job type", duration.clone());
        registry.register("jobs_in_flight", "Jobs whose handler is running, by job type", in_flight.clone());
        registry.register(
            "stream_reconnects",
            "StreamActivatedJobs streams reopened after they ended or failed, by job type",
            stream_reconnects.clone(),
        );
        registry.register("gateway_errors", "Failed gateway calls, by RPC and error kind", gateway_errors.clone());
        let handlers = Gauge::default();
        registry.register("handlers", "Job types this worker handles", handlers.clone());
        Self { handlers, registry, activated, handled, duration, in_flight, stream_reconnects, gateway_errors }
    }

    /// Records how many job types the worker serves.
    pub fn set_handlers(&self, count: usize) {
        self.handlers.set(count as i64);
    }

    pub fn job_activated(&self, job_type: &str) {
        self.activated.get_or_create(&TypeLabels { job_type: job_type.into() }).inc();
    }

    pub fn job_handled(&self, job_type: &str, outcome: &str, duration: Duration) {
        self.handled.get_or_create(&HandledLabels { job_type: job_type.into(), outcome: outcome.into() }).inc();
        self.duration.get_or_create(&TypeLabels { job_type: job_type.into() }).observe(duration.as_secs_f64());
    }

    pub fn in_flight_add(&self, job_type: &str, delta: i64) {
        self.in_flight.get_or_create(&TypeLabels { job_type: job_type.into() }).inc_by(delta);
    }

    pub fn stream_reconnect(&self, job_type: &str) {
        self.stream_reconnects.get_or_create(&TypeLabels { job_type: job_type.into() }).inc();
    }

    pub fn gateway_error(&self, rpc: &str, kind: &str) {
        self.gateway_errors.get_or_create(&ErrorLabels { rpc: rpc.into(), kind: kind.into() }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Liveness and readiness: ready while the gateway answered Topology recently.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds since `started` of the last good Topology answer, plus one (0 = never).
    last_topology_ok: AtomicU64,
    window: Duration,
}

impl Health {
    /// `window`: how recent the last successful Topology must be for `/readyz` to say ready.
    pub fn new(window: Duration) -> Self {
        Self { started: Instant::now(), last_topology_ok: AtomicU64::new(0), window }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records a successful Topology answer.
    pub fn topology_ok(&self) {
        let ms = self.started.elapsed().as_millis() as u64 + 1;
        self.last_topology_ok.store(ms, Ordering::Relaxed);
    }

    /// True when the gateway answered Topology within the window.
    pub fn is_ready(&self) -> bool {
        match self.last_topology_ok.load(Ordering::Relaxed) {
            0 => false,
            ms => self.started.elapsed().saturating_sub(Duration::from_millis(ms - 1)) <= self.window,
        }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The axum router for `/metrics`, `/healthz` and `/readyz`.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz_handler))
        .with_state(AppState { metrics, health })
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.render())
}

async fn readyz_handler(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.is_ready() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: no Topology answer from the gateway within {:?}\n", s.health.window()),
        )
    }
}

/// Binds `address` and serves the endpoints until `shutdown` completes. Returns the bound
/// address (useful with port 0) and the server task.
pub async fn serve(
    address: &str,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on worker.metrics_address {address}: {e}; pick a free host:port or set it to \"\" to disable"),
        )
    })?;
    let local = listener.local_addr()?;
    let app = router(metrics, health);
    let task = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_held_while_a_question_is_open_and_written_after() {
        use std::io::Write;
        let hold = hold_logs();
        StderrUnlessHeld.write_all(b"held line c8dr-test-7f3a\n").unwrap();
        let held = String::from_utf8_lossy(&HELD_LINES.lock().unwrap()).into_owned();
        assert!(held.contains("held line c8dr-test-7f3a"), "{held}");
        drop(hold);
        assert!(!String::from_utf8_lossy(&HELD_LINES.lock().unwrap()).contains("c8dr-test-7f3a"));
        assert!(!LOGS_HELD.load(Ordering::SeqCst));
    }

    #[test]
    fn metrics_render_names_and_labels() {
        let m = Metrics::new();
        m.job_activated("c8dr.x");
        m.job_handled("c8dr.x", "complete", Duration::from_millis(3));
        m.in_flight_add("c8dr.x", 1);
        m.stream_reconnect("c8dr.x");
        m.gateway_error("ActivateJobs", "unavailable");
        let text = m.render();
        for needle in [
            "c8dr_worker_jobs_activated_total{job_type=\"c8dr.x\"} 1",
            "c8dr_worker_jobs_handled_total{job_type=\"c8dr.x\",outcome=\"complete\"} 1",
            "c8dr_worker_handler_duration_seconds_count{job_type=\"c8dr.x\"} 1",
            "c8dr_worker_jobs_in_flight{job_type=\"c8dr.x\"} 1",
            "c8dr_worker_stream_reconnects_total{job_type=\"c8dr.x\"} 1",
            "c8dr_worker_gateway_errors_total{rpc=\"ActivateJobs\",kind=\"unavailable\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn readiness_follows_topology_answers() {
        let h = Health::new(Duration::from_secs(60));
        assert!(!h.is_ready());
        h.topology_ok();
        assert!(h.is_ready());
        let stale = Health::new(Duration::ZERO);
        stale.topology_ok();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!stale.is_ready());
    }
}

/// Rate limit for repeated identical log lines: the first occurrence of a key is logged, then at
/// most one line per `every`, saying how many were suppressed in between ("repeated N times").
#[derive(Debug)]
pub struct LogLimiter {
    every: Duration,
    seen: std::sync::Mutex<std::collections::HashMap<String, (tokio::time::Instant, u64)>>,
}

/// What to do with one occurrence of a repeated line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDecision {
    /// Log it; `suppressed` identical lines were dropped since the last one logged.
    Log { suppressed: u64 },
    /// Drop it (counted, reported with the next line logged).
    Suppress,
}

impl LogLimiter {
    pub fn new(every: Duration) -> Self {
        Self { every, seen: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    /// Decides for one occurrence of `key` now.
    pub fn check(&self, key: &str) -> LogDecision {
        self.check_at(key, tokio::time::Instant::now())
    }

    /// [`LogLimiter::check`] at an explicit instant.
    pub fn check_at(&self, key: &str, now: tokio::time::Instant) -> LogDecision {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 1024 {
            // bounded memory: forget keys not logged for a while
            let every = self.every;
            seen.retain(|_, (at, _)| now.saturating_duration_since(*at) < every);
        }
        match seen.get_mut(key) {
            Some((last, suppressed)) if now.saturating_duration_since(*last) < self.every => {
                *suppressed += 1;
                LogDecision::Suppress
            }
            Some((last, suppressed)) => {
                let n = *suppressed;
                *last = now;
                *suppressed = 0;
                LogDecision::Log { suppressed: n }
            }
            None => {
                seen.insert(key.to_string(), (now, 0));
                LogDecision::Log { suppressed: 0 }
            }
        }
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::*;

    #[test]
    fn logs_the_first_then_at_most_once_per_window_with_the_count() {
        let l = LogLimiter::new(Duration::from_secs(30));
        let t0 = tokio::time::Instant::now();
        assert_eq!(l.check_at("a", t0), LogDecision::Log { suppressed: 0 });
        for i in 1..=100 {
            assert_eq!(l.check_at("a", t0 + Duration::from_millis(i * 100)), LogDecision::Suppress);
        }
        // another key is independent
        assert_eq!(l.check_at("b", t0 + Duration::from_secs(1)), LogDecision::Log { suppressed: 0 });
        assert_eq!(l.check_at("a", t0 + Duration::from_secs(30)), LogDecision::Log { suppressed: 100 });
        assert_eq!(l.check_at("a", t0 + Duration::from_secs(31)), LogDecision::Suppress);
    }
}
