//! Exponential back-off with jitter (as the Java client's default: factor 1.6, jitter ±10%),
//! and [`Gate`]: one back-off shared by every loop of a worker for connection and credential
//! errors, so N job types do not multiply the calls to a gateway or identity provider that is
//! down or refusing.
use rand::Rng;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Growth factor between two consecutive delays.
pub const FACTOR: f64 = 1.6;
/// Relative jitter applied to each delay (±).
pub const JITTER: f64 = 0.1;

/// Back-off state: [`Backoff::next_delay`] grows the delay, [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Option<Duration>,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Self { min, max: max.max(min), current: None }
    }

    /// The next delay: `min` first, then ×1.6 up to `max`, each with ±10% jitter.
    pub fn next_delay(&mut self) -> Duration {
        let base = match self.current {
            None => self.min,
            Some(d) => d.mul_f64(FACTOR).min(self.max),
        };
        self.current = Some(base);
        let jitter = rand::rng().random_range(-JITTER..=JITTER);
        base.mul_f64(1.0 + jitter)
    }

    /// Back to the minimum after a successful call.
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// True when at least one delay was handed out since the last reset.
    pub fn is_backing_off(&self) -> bool {
        self.current.is_some()
    }
}

/// A shared circuit for errors every call would hit alike (gateway unreachable, credentials
/// rejected, token endpoint failing).
///
/// While it is closed, callers wait in [`Gate::pass`] until the back-off ends; then exactly one
/// caller (the probe) makes a call. Its success opens the gate for all, its failure starts the
/// next, longer back-off. So a failing gateway sees at most one call per back-off step, however
/// many loops there are.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Notify,
}

#[derive(Debug)]
struct GateState {
    failing: bool,
    probing: bool,
    open_at: Instant,
    backoff: Backoff,
    failures: u64,
}

/// Whether the caller may call, and whether it is the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The gate is open: call.
    Open,
    /// The back-off ended: this caller probes; report its result with success/failure.
    Probe,
}

impl Gate {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            state: Mutex::new(GateState {
                failing: false,
                probing: false,
                open_at: Instant::now(),
                backoff: Backoff::new(min, max),
                failures: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the caller may call. Cancel-safe (a cancelled probe releases its turn only
    /// at the next success/failure; the worker cancels only on shutdown).
    pub async fn pass(&self) -> Pass {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait_until = {
                let mut g = self.lock();
                if !g.failing {
                    return Pass::Open;
                }
                if g.probing {
                    None
                } else if Instant::now() >= g.open_at {
                    g.probing = true;
                    return Pass::Probe;
                } else {
                    Some(g.open_at)
                }
            };
            match wait_until {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// A call reached the gateway and was answered (whatever the answer): open for everyone.
    pub fn success(&self) {
        let mut g = self.lock();
        if g.failing || g.backoff.is_backing_off() {
            g.failing = false;
            g.probing = false;
            g.backoff.reset();
            drop(g);
            self.changed.notify_waiters();
        }
    }

    /// A call failed with a connection or credential error. Returns how long the gate stays
    /// closed and whether this failure started a new back-off step (log it) or fell into one
    /// already running (another loop's call, in flight when the gate closed).
    pub fn failure(&self, was_probe: bool) -> (Duration, bool) {
        let mut g = self.lock();
        let now = Instant::now();
        if g.failing && !was_probe {
            return (g.open_at.saturating_duration_since(now), false);
        }
        let delay = g.backoff.next_delay();
        g.failing = true;
        g.probing = false;
        g.open_at = now + delay;
        g.failures += 1;
        drop(g);
        self.changed.notify_waiters();
        (delay, true)
    }

    /// Back-off steps started so far.
    pub fn failures(&self) -> u64 {
        self.lock().failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_factor_within_jitter_and_caps_at_max() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        let d1 = b.next_delay().as_secs_f64();
        assert!((0.09..=0.11).contains(&d1), "{d1}");
        let d2 = b.next_delay().as_secs_f64();
        assert!((0.144..=0.176).contains(&d2), "{d2}");
        for _ in 0..10 {
            b.next_delay();
        }
        let capped = b.next_delay().as_secs_f64();
        assert!((0.27..=0.33).contains(&capped), "{capped}");
        b.reset();
        assert!(!b.is_backing_off());
        let again = b.next_delay().as_secs_f64();
        assert!((0.09..=0.11).contains(&again), "{again}");
    }

    #[tokio::test]
    async fn the_gate_lets_one_probe_through_per_backoff_step() {
        let gate = std::sync::Arc::new(Gate::new(Duration::from_millis(10), Duration::from_millis(100)));
        assert_eq!(gate.pass().await, Pass::Open);
        let (d, new_step) = gate.failure(false);
        assert!(new_step && d >= Duration::from_millis(9));
        // a second loop's call that was in flight does not advance the back-off
        let (_, new_step) = gate.failure(false);
        assert!(!new_step);
        assert_eq!(gate.failures(), 1);
        // ten waiters: exactly one becomes the probe; the others wait for its outcome
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let g = gate.clone();
            set.spawn(async move { g.pass().await });
        }
        let first = set.join_next().await.unwrap().unwrap();
        assert_eq!(first, Pass::Probe);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(set.len(), 9);
        assert!(set.try_join_next().is_none(), "nobody passes while the probe runs");
        // the probe fails: a longer step, and again exactly one probe after it
        let (d2, new_step) = gate.failure(true);
        assert!(new_step && d2 >= Duration::from_millis(14), "{d2:?}");
        assert_eq!(set.join_next().await.unwrap().unwrap(), Pass::Probe);
        // the probe succeeds: everyone passes
        gate.success();
        while let Some(p) = set.join_next().await {
            assert_eq!(p.unwrap(), Pass::Open);
        }
        assert_eq!(gate.failures(), 2);
    }
}
