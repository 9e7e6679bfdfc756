//! The audit journal: one JSON line per mutating call, per step attempt and per step outcome.
//! Every line is flushed and synced before the append returns, so a job never completes before
//! its journal lines are on disk. Appends from many tasks are serialized by one mutex.
//!
//! The journal holds no secrets: mutation summaries are built by c8dr from non-secret fields
//! (see `Mutation::summary`), and messages are scrubbed of credentials in URLs.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A step attempt began.
    Attempt,
    /// A mutating call to the target (or the platform) and its answer.
    Call,
    /// The step's outcome: done, refused (BPMN error) or retry (job failure).
    Outcome,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    pub time: DateTime<Utc>,
    pub kind: EntryKind,
    pub target: String,
    /// Job type, e.g. `c8dr.remove-brokers`.
    pub step: String,
    /// BPMN element id of the task.
    pub element_id: String,
    pub process_instance_key: i64,
    pub job_key: i64,
    pub worker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<u8>,
    /// Call: the action (`force-remove-brokers`); outcome: `done`, `refused`, `retry`.
    pub action: String,
    /// Call: request summary; outcome: the BPMN error code when refused.
    #[serde(default)]
    pub request: String,
    /// Call: `ok` or the HTTP status / `error`; outcome: `alreadyDone` or empty.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: String,
}

/// Errors writing or reading the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("audit journal {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The journal file. Cheap to clone; clones share the file and its lock.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl Journal {
    /// A journal appending to `path` (created on the first append; parent dirs too).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { inner: Arc::new(Inner { path: path.into(), file: Mutex::new(None) }) }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io { path: self.inner.path.clone(), source }
    }

    /// Appends one line, flushed and synced to disk before returning.
    pub fn append(&self, entry: &JournalEntry) -> Result<(), JournalError> {
        let mut entry = entry.clone();
        entry.message = scrub(&entry.message);
        entry.request = scrub(&entry.request);
        let mut line = serde_json::to_string(&entry).map_err(|e| self.io(std::io::Error::other(e)))?;
        line.push('\n');
        let mut guard = self.inner.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            if let Some(dir) = self.inner.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
            }
            let f = OpenOptions::new().create(true).append(true).open(&self.inner.path).map_err(|e| self.io(e))?;
            *guard = Some(f);
        }
        let f = guard.as_mut().expect("opened above");
        f.write_all(line.as_bytes()).map_err(|e| self.io(e))?;
        f.flush().map_err(|e| self.io(e))?;
        f.sync_data().map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Every line (unparseable lines are skipped). A missing file is an empty journal.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        let _guard = self.inner.file.lock().unwrap_or_else(|p| p.into_inner());
        let f = match File::open(&self.inner.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let mut out = Vec::new();
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| self.io(e))?;
            if let Ok(entry) = serde_json::from_str::<JournalEntry>(&line) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Lines of one process instance, in order.
    pub fn for_instance(&self, process_instance_key: i64) -> Result<Vec<JournalEntry>, JournalError> {
        Ok(self.entries()?.into_iter().filter(|e| e.process_instance_key == process_instance_key).collect())
    }
}

/// Removes `user:password@` from URLs and anything after `Authorization:` / `password=`-like keys.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&scrub_word(word));
        // `Authorization: <scheme> <credential>`: nothing after the header name is kept
        if word.to_ascii_lowercase().ends_with("authorization:") {
            out.push_str(" ***");
            break;
        }
    }
    out
}

fn scrub_word(word: &str) -> String {
    if let Some(scheme_end) = word.find("://") {
        let rest = &word[scheme_end + 3..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            return format!("{}://***@{}", &word[..scheme_end], &rest[at + 1..]);
        }
    }
    let lower = word.to_ascii_lowercase();
    for key in ["password=", "secret=", "token=", "apikey=", "api_key="] {
        if let Some(pos) = lower.find(key) {
            return format!("{}***", &word[..pos + key.len()]);
        }
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind, pik: i64, action: &str) -> JournalEntry {
        JournalEntry {
            time: Utc::now(),
            kind,
            target: "t".into(),
            step: "c8dr.pause-exporting".into(),
            element_id: "pause".into(),
            process_instance_key: pik,
            job_key: 1,
            worker: "w".into(),
            region: Some(0),
            action: action.into(),
            request: "POST /actuator/exporting/pause".into(),
            status: "ok".into(),
            message: String::new(),
        }
    }

    #[test]
    fn appends_and_reads_back_per_instance() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("sub/journal.jsonl"));
        assert!(j.entries().unwrap().is_empty());
        j.append(&entry(EntryKind::Call, 1, "pause-exporting")).unwrap();
        j.append(&entry(EntryKind::Call, 2, "resume-exporting")).unwrap();
        let all = j.entries().unwrap();
        assert_eq!(all.len(), 2);
        let one = j.for_instance(1).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].action, "pause-exporting");
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn concurrent_appends_keep_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("j.jsonl"));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let j = j.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        j.append(&entry(EntryKind::Attempt, t, "x")).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert_eq!(text.lines().count(), 160);
        assert_eq!(j.entries().unwrap().len(), 160);
    }

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(scrub("GET http://demo:demo@es:9200/_snapshot"), "GET http://***@es:9200/_snapshot");
        assert_eq!(scrub("login password=hunter2"), "login password=***");
        // the doc promises "anything after Authorization:": the scheme and the credential
        assert_eq!(scrub("sent Authorization: Basic dXNlcjpwdw== to es"), "sent Authorization: ***");
        assert_eq!(scrub("authorization: ApiKey abc123"), "authorization: ***");
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("j.jsonl"));
        let mut e = entry(EntryKind::Call, 1, "x");
        e.message = "refused by https://u:pw@host/x token=abc".into();
        j.append(&e).unwrap();
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert!(!text.contains("pw@") && !text.contains("abc"), "{text}");
    }
}
