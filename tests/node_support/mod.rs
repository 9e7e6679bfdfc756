//! Camunda's own Node.js packages for tests, installed with `npm ci` at test time from
//! tests/node/package.json + package-lock.json (pinned) into a cache under the target directory
//! (`CARGO_TARGET_TMPDIR`, gitignored), keyed by the lock file's hash: the first run downloads,
//! later runs reuse. Without npm or the npm registry these tests FAIL (they are the only check
//! against Camunda's schemas and SDK).
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

static INSTALL: Mutex<Option<PathBuf>> = Mutex::new(None);

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The directory holding `node_modules` and copies of tests/node's scripts.
pub fn node_dir() -> PathBuf {
    let mut guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = guard.as_ref() {
        return d.clone();
    }
    let src = source_dir();
    let manifest = std::fs::read(src.join("package.json")).expect("tests/node/package.json");
    let lock = std::fs::read(src.join("package-lock.json")).expect("tests/node/package-lock.json");
    let key = fnv(&[manifest.as_slice(), lock.as_slice()].concat());
    // one cache per test binary: binaries run in parallel and must not install into one folder
    let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let bin = exe.as_deref().unwrap_or("tests").split('-').next().unwrap_or("tests").to_string();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("node-{bin}-{key:016x}"));
    let done = dir.join(".installed");
    if !done.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("package.json"), &manifest).unwrap();
        std::fs::write(dir.join("package-lock.json"), &lock).unwrap();
        let out = run_with_timeout(
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"]).current_dir(&dir),
            Duration::from_secs(600),
        )
        .unwrap_or_else(|e| panic!("cannot run npm ({e}): these tests need Node.js, npm and the npm registry"));
        assert!(
            out.status.success(),
            "`npm ci` in {} failed ({}): {}\nThese tests need npm and access to the npm registry.",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&done, b"").unwrap();
    }
    // scripts are copied on every run (cheap), so edits take effect without a reinstall
    for e in std::fs::read_dir(&src).unwrap().filter_map(Result::ok) {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "mjs") {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    *guard = Some(dir.clone());
    dir
}

/// Runs `cmd`, killing it (by its own pid) after `timeout`; stdout and stderr are captured.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> std::io::Result<Output> {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out,
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {timeout:?}")))
        }
    }
}

/// Runs `node SCRIPT ARGS..` from the install directory (so the script finds node_modules).
pub fn node(script: &str, args: &[&str], env: &[(&str, String)], timeout: Duration) -> Output {
    let dir = node_dir();
    let mut cmd = Command::new("node");
    cmd.arg(dir.join(script)).args(args).current_dir(&dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, timeout).unwrap_or_else(|e| panic!("node {script}: {e}"))
}
