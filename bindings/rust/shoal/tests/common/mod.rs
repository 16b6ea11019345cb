//! A real shoald per test: its own domain and runtime directory, stopped with
//! SIGTERM. The daemon binary comes from $SHOALD (default <repo>/build/shoald).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

extern "C" {
    // From the C library std already links; no `libc` crate needed.
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGTERM: i32 = 15;

pub fn shoald_path() -> PathBuf {
    std::env::var_os("SHOALD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../build/shoald")))
}

/// Sends SIGTERM to a child.
pub fn terminate(child: &Child) {
    unsafe {
        kill(child.id() as i32, SIGTERM);
    }
}

pub struct Daemon {
    child: Option<Child>,
    pub domain: String,
    pub dir: PathBuf,
}

impl Daemon {
    pub fn start() -> Daemon {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let domain = format!("rusttest-{}-{}", std::process::id(), n);
        let dir = std::env::temp_dir().join(format!("shoal-{domain}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create runtime dir");
        let shoald = shoald_path();
        // --ready-fd 1: the daemon writes "ready\n" on its stdout (a pipe)
        // once it accepts connections.
        let mut child = Command::new(&shoald)
            .args(["--domain", &domain, "--log-level", "warn", "--ready-fd", "1", "--runtime-dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e}); set SHOALD", shoald.display()));
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut line).expect("read ready line");
        if line != "ready\n" {
            let _ = child.kill();
            let status = child.wait();
            panic!("{} did not report ready (got {line:?}, {status:?})", shoald.display());
        }
        Daemon { child: Some(child), domain, dir }
    }

    pub fn options(&self) -> shoal::RuntimeOptions {
        shoal::RuntimeOptions {
            domain: Some(self.domain.clone()),
            runtime_dir: Some(self.dir.clone()),
            connect_timeout: Some(Duration::from_secs(5)),
        }
    }

    pub fn runtime(&self, name: &str) -> shoal::Runtime {
        shoal::Runtime::with_options(name, &self.options()).expect("runtime")
    }

    /// SIGTERM; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe {
            kill(child.id() as i32, SIGTERM);
        }
        child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `pred` every 2 ms for up to 5 s.
pub fn eventually(mut pred: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while !pred() {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}
