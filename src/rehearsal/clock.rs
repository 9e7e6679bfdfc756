//! A clock that can run faster than real time, shared by the lab and the rehearsal engine so
//! a 15-minute timer or a 2-minute snapshot takes a fraction of that on a laptop.
//!
//! Simulated time starts at the wall-clock time of creation and advances `speed` times faster
//! than real time. Durations given to [`Clock::sleep`] are simulated durations.
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
        Self { inner: Arc::new(Inner { speed, real_start: Instant::now(), sim_start: Utc::now() }) }
    }

    pub fn speed(&self) -> f64 {
        self.inner.speed
    }

    /// Simulated time elapsed since the clock was created.
    pub fn elapsed(&self) -> Duration {
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

    /// Sleeps for a simulated duration.
    pub async fn sleep(&self, simulated: Duration) {
        tokio::time::sleep(self.to_real(simulated)).await;
    }

    /// Real instant at which the given simulated epoch-millis time is reached.
    pub fn real_deadline(&self, sim_epoch_millis: i64) -> Instant {
        let now_ms = self.now_millis();
        let ahead = (sim_epoch_millis - now_ms).max(0) as u64;
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
}
