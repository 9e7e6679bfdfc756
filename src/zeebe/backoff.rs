//! Exponential back-off with jitter (as the Java client's default: factor 1.6, jitter ±10%).
use rand::Rng;
use std::time::Duration;

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
}
