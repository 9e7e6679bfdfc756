//! The audit journal: one JSON line per mutating call, per step attempt and per step outcome.
//! Every line is flushed and synced before the append returns, so a job never completes before
//! its journal lines are on disk. Appends from many tasks are serialized by one mutex.
//!
//! The journal holds no secrets: mutation summaries are built by c8dr from non-secret fields
//! (see `Mutation::summary`), and messages are scrubbed of credentials in URLs.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
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
    /// The file at the path is no longer the file this worker writes (moved, rotated, deleted or
    /// replaced while the worker ran): reads and writes would see different histories.
    #[error(
        "audit journal {path} was moved, deleted or replaced while this worker ran ({detail}): nothing is written to or decided from it; put the file back at {path}, or restart the worker to continue with the file now there"
    )]
    Replaced { path: PathBuf, detail: String },
    /// A damaged line (not valid JSON, e.g. torn by a crash mid-write) may have recorded a
    /// mutating call of this process instance: what the journal does not say cannot be trusted.
    #[error(
        "audit journal {path}: line {line} is damaged and may have recorded a mutating call of process instance {instance} ({fragment:?}): check that call against the target, then fix or delete the line; nothing is decided from the journal until then"
    )]
    Damaged { path: PathBuf, line: usize, instance: i64, fragment: String },
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
    /// `fsync` every line (`[journal] fsync`); off only for a throwaway journal (rehearsals).
    fsync: bool,
}

/// Identity of a file (device and inode on Unix), to notice a journal replaced under our feet.
#[cfg(unix)]
fn identity(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_m: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// A line that is not valid JSON: its 1-based number and its bytes.
type DamagedLine = (usize, Vec<u8>);

/// At most this many characters of a damaged line are quoted in logs and errors.
const FRAGMENT_CHARS: usize = 120;

fn fragment(bytes: &[u8]) -> String {
    let text = scrub(&String::from_utf8_lossy(bytes));
    let mut out: String = text.chars().take(FRAGMENT_CHARS).collect();
    if text.chars().count() > FRAGMENT_CHARS {
        out.push('…');
    }
    out
}

impl Journal {
    /// A journal appending to `path` (created on the first append; parent dirs too).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_fsync(path, true)
    }

    /// A journal whose lines are synced to disk (`fsync: true`, the production setting) or only
    /// written (a rehearsal's temporary journal: an fdatasync costs milliseconds per line, which a
    /// rehearsal's fast clock multiplies into seconds of simulated time).
    pub fn with_fsync(path: impl Into<PathBuf>, fsync: bool) -> Self {
        Self { inner: Arc::new(Inner { path: path.into(), file: Mutex::new(None), fsync }) }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io { path: self.inner.path.clone(), source }
    }

    /// Fails when the open file is no longer the one at the path (moved, deleted, replaced).
    fn check_same_file(&self, file: &File) -> Result<(), JournalError> {
        let ours = identity(&file.metadata().map_err(|e| self.io(e))?);
        let replaced = |detail: String| JournalError::Replaced { path: self.inner.path.clone(), detail };
        match std::fs::metadata(&self.inner.path) {
            Ok(m) if identity(&m) == ours => Ok(()),
            Ok(_) => Err(replaced("another file is at the path now".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(replaced("no file at the path any more".into())),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Opens the file for appending and repairs a torn last line (a crash mid-write leaves a line
    /// without its newline; the next entry would be glued onto it and lost): the fragment is
    /// terminated, so it stays as evidence on a line of its own, and reported with a warning.
    fn open_for_append(&self) -> Result<File, JournalError> {
        if let Some(dir) = self.inner.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let mut f =
            OpenOptions::new().create(true).append(true).read(true).open(&self.inner.path).map_err(|e| self.io(e))?;
        let len = f.metadata().map_err(|e| self.io(e))?.len();
        if len > 0 {
            // the last line, up to 64 KiB back (journal lines are far shorter)
            let back = len.min(64 * 1024);
            f.seek(SeekFrom::Start(len - back)).map_err(|e| self.io(e))?;
            let mut tail = Vec::with_capacity(back as usize);
            f.read_to_end(&mut tail).map_err(|e| self.io(e))?;
            if tail.last() != Some(&b'\n') {
                let start = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let torn = &tail[start..];
                tracing::warn!(
                    journal = %self.inner.path.display(),
                    offset = len - back + start as u64,
                    bytes = torn.len(),
                    fragment = %fragment(torn),
                    "audit journal ends in a torn line (crash mid-write?): terminated it so new entries start on a line of their own; the torn entry is not read"
                );
                f.write_all(b"\n").map_err(|e| self.io(e))?;
                f.sync_data().map_err(|e| self.io(e))?;
            }
        }
        Ok(f)
    }

    /// Appends one line, flushed (and synced to disk, unless the journal was made without fsync)
    /// before returning.
    pub fn append(&self, entry: &JournalEntry) -> Result<(), JournalError> {
        let mut entry = entry.clone();
        entry.message = scrub(&entry.message);
        entry.request = scrub(&entry.request);
        let mut line = serde_json::to_string(&entry).map_err(|e| self.io(std::io::Error::other(e)))?;
        line.push('\n');
        let mut guard = self.inner.file.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(f) => self.check_same_file(f)?,
            None => *guard = Some(self.open_for_append()?),
        }
        let f = guard.as_mut().expect("opened above");
        let fsync = self.inner.fsync;
        let written = f
            .write_all(line.as_bytes())
            .and_then(|()| f.flush())
            .and_then(|()| if fsync { f.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // a partial line may be on disk: reopen (and repair the tail) before the next append
            *guard = None;
            return Err(self.io(e));
        }
        Ok(())
    }

    /// Every readable line, with the damaged ones (not valid JSON) as (line number, bytes).
    fn read_all(&self) -> Result<(Vec<JournalEntry>, Vec<DamagedLine>), JournalError> {
        let guard = self.inner.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = guard.as_ref() {
            self.check_same_file(f)?;
        }
        let f = match File::open(&self.inner.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(self.io(e)),
        };
        drop(guard);
        let mut out = Vec::new();
        let mut damaged = Vec::new();
        for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
            let line = line.map_err(|e| self.io(e))?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<JournalEntry>(&line) {
                Ok(entry) => out.push(entry),
                Err(_) => damaged.push((i + 1, line)),
            }
        }
        Ok((out, damaged))
    }

    /// Every readable line; damaged lines (torn by a crash) are skipped. A missing file is an
    /// empty journal. Fails when the file was replaced while this worker ran.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        Ok(self.read_all()?.0)
    }

    /// Lines of one process instance, in order. Fails, rather than answer with a history that
    /// may lack a mutating call, when a damaged line may have belonged to this instance: one that
    /// names it (or names no instance at all) and is not an attempt or outcome line.
    pub fn for_instance(&self, process_instance_key: i64) -> Result<Vec<JournalEntry>, JournalError> {
        let (entries, damaged) = self.read_all()?;
        for (line, bytes) in &damaged {
            let text = String::from_utf8_lossy(bytes);
            let harmless = text.contains("\"kind\":\"attempt\"") || text.contains("\"kind\":\"outcome\"");
            let names_other = instance_of(&text).is_some_and(|k| k != process_instance_key);
            if !harmless && !names_other {
                return Err(JournalError::Damaged {
                    path: self.inner.path.clone(),
                    line: *line,
                    instance: process_instance_key,
                    fragment: fragment(bytes),
                });
            }
        }
        Ok(entries.into_iter().filter(|e| e.process_instance_key == process_instance_key).collect())
    }
}

/// The process instance a (damaged) line names, when its `processInstanceKey` is complete.
fn instance_of(text: &str) -> Option<i64> {
    let rest = &text[text.find("\"processInstanceKey\":")? + "\"processInstanceKey\":".len()..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '-'))?; // None: cut inside the number
    rest[..end].parse().ok()
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
    fn a_journal_without_fsync_writes_and_reads_the_same_lines() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::with_fsync(dir.path().join("j.jsonl"), false);
        j.append(&entry(EntryKind::Call, 1, "pause-exporting")).unwrap();
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert_eq!(text.lines().count(), 1, "written and flushed before append returns");
        assert_eq!(j.for_instance(1).unwrap()[0].action, "pause-exporting");
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

    fn line_of(e: &JournalEntry) -> String {
        serde_json::to_string(e).unwrap()
    }

    /// A crash mid-write leaves a line without its newline. Before the repair, the next entry was
    /// glued onto it and both were lost to readers.
    #[test]
    fn a_torn_last_line_is_terminated_and_the_next_entry_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let whole = line_of(&entry(EntryKind::Call, 1, "pause-exporting"));
        let torn = line_of(&entry(EntryKind::Call, 7, "force-remove-brokers"));
        let cut = torn.find("\"worker\"").unwrap(); // after processInstanceKey, before the end
        std::fs::write(&path, format!("{whole}\n{}", &torn[..cut])).unwrap();

        let j = Journal::new(&path);
        j.append(&entry(EntryKind::Call, 1, "resume-exporting")).unwrap();
        let actions: Vec<String> = j.entries().unwrap().into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["pause-exporting", "resume-exporting"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "the fragment stays on a line of its own: {text}");
        assert!(text.ends_with('\n'));
        // instance 1's history is whole; instance 7 may have lost a mutating call
        assert_eq!(j.for_instance(1).unwrap().len(), 2);
        match j.for_instance(7) {
            Err(JournalError::Damaged { line, instance, .. }) => assert_eq!((line, instance), (2, 7)),
            other => panic!("a damaged call line of instance 7 must not be trusted: {other:?}"),
        }
    }

    /// A damaged line that names no instance could be anyone's mutating call; a damaged attempt
    /// line records no call and is only skipped.
    #[test]
    fn damaged_lines_are_attributed_or_distrusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let attempt = line_of(&entry(EntryKind::Attempt, 1, "attempt"));
        let call = line_of(&entry(EntryKind::Call, 1, "x"));
        // the instance key cut inside its digits is not attributed to instance 1 (or 12, 123...)
        let key_cut = &call[..call.find("\"processInstanceKey\":").unwrap() + "\"processInstanceKey\":".len()];
        std::fs::write(&path, format!("{}\n{call}\n", &attempt[..attempt.len() - 5])).unwrap();
        let j = Journal::new(&path);
        assert_eq!(j.for_instance(1).unwrap().len(), 1, "a torn attempt line is harmless");
        std::fs::write(&path, format!("{key_cut}\n{call}\n")).unwrap();
        let j = Journal::new(&path);
        assert!(matches!(j.for_instance(1), Err(JournalError::Damaged { line: 1, .. })));
        assert!(matches!(j.for_instance(5), Err(JournalError::Damaged { .. })));
        assert_eq!(instance_of("{\"processInstanceKey\":2251799813685249,\"jobKey\""), Some(2251799813685249));
        assert_eq!(instance_of("{\"processInstanceKey\":22517"), None);
    }

    /// A journal moved away while the worker runs: before, appends went to the moved file while
    /// reads saw an empty one at the path. Now both refuse until the file is back.
    #[test]
    fn a_moved_or_replaced_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let moved = dir.path().join("j.jsonl.1");
        let j = Journal::new(&path);
        j.append(&entry(EntryKind::Call, 1, "pause-exporting")).unwrap();
        std::fs::rename(&path, &moved).unwrap();
        assert!(matches!(j.append(&entry(EntryKind::Call, 1, "x")), Err(JournalError::Replaced { .. })));
        assert!(matches!(j.for_instance(1), Err(JournalError::Replaced { .. })));
        assert!(!path.exists(), "nothing was written to a new file at the path");
        assert_eq!(std::fs::read_to_string(&moved).unwrap().lines().count(), 1, "nor to the moved file");
        // another file at the path (rotation, restore from an old copy) is refused too
        std::fs::write(&path, "").unwrap();
        let err = j.entries().unwrap_err();
        assert!(err.to_string().contains("moved, deleted or replaced"), "{err}");
        // put back: trusted again
        std::fs::rename(&moved, &path).unwrap();
        j.append(&entry(EntryKind::Call, 1, "resume-exporting")).unwrap();
        assert_eq!(j.for_instance(1).unwrap().len(), 2);
        // a new worker (new handle) continues with the file now at the path
        assert_eq!(Journal::new(&path).entries().unwrap().len(), 2);
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
