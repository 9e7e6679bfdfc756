//! A clock that can run faster than real time, shared by the lab and the rehearsal engine so
//! a 15-minute timer or a 2-minute snapshot takes a fraction of that on a laptop.
//!
//! Simulated time starts at the wall-clock time of creation and advances `speed` times faster
//! than real time. Durations given to [`Clock::sleep`] are simulated durations.
//!
//! A [`Clock::manual`] clock stands still until [`Clock::advance`] moves it: tests observe a
//! simulation step by step without sleeping.
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    speed: f64,
    real_start: Instant,
    sim_start: DateTime<Utc>,
    /// Manual clocks: simulated milliseconds elapsed, moved only by [`Clock::advance`].
    manual: Option<tokio::sync::watch::Sender<u64>>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::real()
    }
}

impl Clock {
    /// Real time (speed 1).
    pub fn real() -> Self {
        Self::with_speed(1.0)
    }

    /// Simulated time runs `speed` times faster than real time. `speed` must be > 0.
    pub fn with_speed(speed: f64) -> Self {
        assert!(speed.is_finite() && speed > 0.0, "clock speed must be a positive number");
        Self { inner: Arc::new(Inner { speed, real_start: Instant::now(), sim_start: Utc::now(), manual: None }) }
    }

    /// A clock that stands still until [`Clock::advance`] moves it (tests).
    pub fn manual() -> Self {
        let (tx, _) = tokio::sync::watch::channel(0);
        Self {
            inner: Arc::new(Inner { speed: 1.0, real_start: Instant::now(), sim_start: Utc::now(), manual: Some(tx) }),
        }
    }

    /// Moves a manual clock forward by a simulated duration (no-op on other clocks).
    pub fn advance(&self, by: Duration) {
        if let Some(m) = &self.inner.manual {
            let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
            m.send_modify(|t| *t = t.saturating_add(ms));
        }
    }

    pub fn speed(&self) -> f64 {
        self.inner.speed
    }

    /// Simulated time elapsed since the clock was created.
    pub fn elapsed(&self) -> Duration {
        if let Some(m) = &self.inner.manual {
            return Duration::from_millis(*m.borrow());
        }
        self.inner.real_start.elapsed().mul_f64(self.inner.speed)
    }

    /// The simulated wall-clock time now.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.elapsed()).unwrap_or(chrono::Duration::MAX);
        self.inner.sim_start + elapsed
    }

    /// Simulated epoch milliseconds now.
    pub fn now_millis(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// The real duration that corresponds to a simulated one.
    pub fn to_real(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.inner.speed)
    }

    /// Sleeps for a simulated duration (measured from the call, not from the first poll).
    pub fn sleep(&self, simulated: Duration) -> impl std::future::Future<Output = ()> + Send + 'static {
        let manual = self.inner.manual.as_ref().map(|m| (m.subscribe(), self.elapsed().saturating_add(simulated)));
        let real = self.to_real(simulated);
        async move {
            match manual {
                Some((mut rx, until)) => {
                    let _ = rx.wait_for(|t| Duration::from_millis(*t) >= until).await;
                }
                None => tokio::time::sleep(real).await,
            }
        }
    }

    /// Real instant at which the given simulated epoch-millis time is reached.
    pub fn real_deadline(&self, sim_epoch_millis: i64) -> Instant {
        let now_ms = self.now_millis();
        let ahead = (sim_epoch_millis - now_ms).max(0) as u64;
        if self.inner.manual.is_some() && ahead > 0 {
            // reached only when advanced: far enough away for any test
            return Instant::now() + Duration::from_secs(3600);
        }
        Instant::now() + self.to_real(Duration::from_millis(ahead))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accelerated_clock_runs_faster_than_real_time() {
        let clock = Clock::with_speed(100.0);
        let t0 = clock.now();
        let real = Instant::now();
        clock.sleep(Duration::from_secs(2)).await; // 20 ms real
        let sim_elapsed = clock.now() - t0;
        assert!(sim_elapsed >= chrono::Duration::seconds(2), "simulated {sim_elapsed}");
        assert!(real.elapsed() < Duration::from_secs(1), "took {:?} real", real.elapsed());
        assert_eq!(clock.to_real(Duration::from_secs(100)), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual();
        let t0 = clock.now_millis();
        assert_eq!(clock.now_millis(), t0);
        let sleeper = tokio::spawn(clock.sleep(Duration::from_secs(10)));
        clock.advance(Duration::from_secs(4));
        assert_eq!(clock.now_millis(), t0 + 4_000);
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(6));
        sleeper.await.unwrap();
        assert_eq!(clock.now_millis(), t0 + 10_000);
    }
}
