//! Time: timers, job deadlines, back-offs and message expiry.
use super::*;

impl State {
    /// Fires everything due at `self.now`; returns the next due time (simulated epoch ms).
    pub fn tick(&mut self) -> Option<i64> {
        let now = self.now_ms();
        loop {
            let due: Vec<(i64, TimerRec)> =
                self.timers.iter().filter(|(_, t)| t.due <= now).map(|(k, t)| (*k, t.clone())).collect();
            if due.is_empty() {
                break;
            }
            for (k, t) in due {
                if self.timers.remove(&k).is_none() {
                    continue; // removed by an earlier timer of this round
                }
                self.log("TIMER", "TRIGGERED", k, Some(t.ei_key), "");
                match t.kind {
                    TimerKind::Catch => {
                        if let Some(e) = self.elems.get_mut(&t.ei_key) {
                            e.pending_vars = Map::new();
                        }
                        self.complete(t.ei_key);
                    }
                    TimerKind::Boundary { boundary_id, interrupting } => {
                        if self.elems.get(&t.ei_key).is_some_and(|e| e.state == ElemState::Activated) {
                            self.trigger_boundary(t.ei_key, &boundary_id, interrupting, Map::new());
                        }
                    }
                }
            }
        }
        let timed_out: Vec<i64> =
            self.jobs.values().filter(|j| j.state == JobState::Activated && j.deadline <= now).map(|j| j.key).collect();
        for k in timed_out {
            let ei = self.jobs[&k].ei_key;
            self.log("JOB", "TIMED_OUT", k, Some(ei), "");
            self.make_activatable(k, 0);
        }
        let backed_off: Vec<i64> = self
            .jobs
            .values()
            .filter(|j| j.state == JobState::Activatable && j.retry_at > 0 && j.retry_at <= now)
            .map(|j| j.key)
            .collect();
        for k in backed_off {
            let ei = self.jobs[&k].ei_key;
            self.log("JOB", "RECURRED_AFTER_BACKOFF", k, Some(ei), "");
            self.make_activatable(k, 0);
        }
        self.messages.retain(|m| m.expires > now);
        let mut next = self.timers.values().map(|t| t.due).min();
        for j in self.jobs.values() {
            let d = match j.state {
                JobState::Activated => Some(j.deadline),
                JobState::Activatable if j.retry_at > 0 => Some(j.retry_at),
                _ => None,
            };
            if let Some(d) = d {
                next = Some(next.map_or(d, |n: i64| n.min(d)));
            }
        }
        if let Some(m) = self.messages.iter().map(|m| m.expires).min() {
            next = Some(next.map_or(m, |n| n.min(m)));
        }
        next
    }
}
