//! A command run under a pseudo-terminal, for `-it` tests: util-linux `script` owns the pty, the
//! test writes keystrokes to its stdin and reads the terminal's output from its stdout.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One command on a pty (`script -qfec CMD /dev/null`), with its output collected as it comes.
pub struct PtySession {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<Vec<u8>>>,
}

impl PtySession {
    /// Starts `cmd` (a shell command line) on a new pty. `envs` are added to its environment.
    pub fn spawn(cmd: &str, envs: &[(&str, String)]) -> Self {
        let mut c = Command::new("script");
        c.args(["-qfec", cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn script (util-linux)");
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().expect("script stdout");
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            stdin,
            output,
        }
    }

    /// Types `bytes` on the terminal.
    pub fn send(&mut self, bytes: &[u8]) {
        if let Some(s) = &mut self.stdin {
            s.write_all(bytes).expect("write to the pty");
            s.flush().expect("flush the pty");
        }
    }

    /// Everything the terminal showed so far, lossily decoded.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Waits until the output contains `needle`; false after `timeout`.
    pub fn expect(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.output().contains(needle)
    }

    /// Waits for the command to end and returns its exit code (None: killed or timed out; the
    /// `script` process is then killed — it is ours).
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
