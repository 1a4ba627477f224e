//! Child processes with captured output, killed on drop.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Environment variables passed through from the test process to children, on top of what
/// the test sets. Everything else is cleared so a developer's shell (AWS credentials, OTEL_*,
/// RUST_LOG) cannot change a test's outcome.
const PASS_THROUGH: &[&str] = &["RUST_BACKTRACE", "LLVM_PROFILE_FILE", "CARGO_LLVM_COV"];

/// Set to `1` to print children's output live, prefixed with their label.
const ECHO_ENV: &str = "FLOWTRACE_E2E_ECHO";

/// Lines of output kept per process; older lines are dropped, so a long-running
/// `flowtrace local` does not grow without bound.
const MAX_LINES: usize = 20_000;

/// How long an exited process's output may take to be read to the end.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
}

#[derive(Debug, Clone)]
struct Line {
    stream: Stream,
    text: String,
}

/// A spawned binary. Clones share the process; the last one dropped kills it.
///
/// stdout and stderr are read line by line on two threads and kept in memory. When the
/// process is dropped while the thread is panicking (a failed assertion), its output is
/// printed to stderr under its label so the test failure shows it.
#[derive(Debug, Clone)]
pub struct ChildProcess {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    label: String,
    pid: u32,
    child: Mutex<Child>,
    lines: Arc<Mutex<VecDeque<Line>>>,
    /// Pipes not yet at end of file.
    open_pipes: Arc<AtomicUsize>,
    exit: Mutex<Option<ExitStatus>>,
    /// Reap the process after killing it. Off when a freezer may still signal the pid after
    /// the kill: an unreaped zombie keeps the pid from being reused by an unrelated process.
    reap: bool,
}

/// How to spawn a [`ChildProcess`].
#[derive(Debug)]
pub struct SpawnSpec<'a> {
    /// A short name for messages and echoed lines.
    pub label: String,
    /// The binary.
    pub program: &'a Path,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its whole environment, beside a few pass-through variables (`RUST_BACKTRACE`, ...).
    pub env: BTreeMap<String, String>,
    /// Reap the process after killing it. Off when a freezer may still signal the pid after
    /// the kill: an unreaped zombie keeps the pid from being reused by an unrelated process.
    pub reap: bool,
    /// Print each line of output to stderr as it arrives, prefixed with `[label]`.
    pub echo: bool,
    /// Start the process in a process group of its own, so a Ctrl-C in the terminal reaches
    /// only the parent, which then stops it in order (Lambda's shutdown sequence).
    pub own_process_group: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ChildProcess {
    /// Spawns `program` with exactly `env` (plus a few pass-through variables), capturing its
    /// output.
    pub fn spawn(
        label: impl Into<String>,
        program: impl AsRef<Path>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        Self::spawn_spec(SpawnSpec {
            label: label.into(),
            program: program.as_ref(),
            args: args.iter().map(OsString::from).collect(),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            reap: true,
            echo: false,
            own_process_group: false,
        })
    }

    /// Spawns a process as `spec` says, capturing its output.
    pub fn spawn_spec(spec: SpawnSpec<'_>) -> Result<Self> {
        let program: PathBuf = spec.program.to_path_buf();
        if !program.is_file() {
            return Err(Error::Process(format!("{}: binary {} does not exist", spec.label, program.display())));
        }
        let mut command = Command::new(&program);
        command.args(&spec.args).env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for key in PASS_THROUGH {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command.envs(&spec.env);
        if spec.own_process_group {
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }

        let mut child =
            command.spawn().map_err(|e| Error::io(format!("spawn {} ({})", spec.label, program.display()), e))?;
        let pid = child.id();
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let open_pipes = Arc::new(AtomicUsize::new(0));
        let echo = spec.echo || std::env::var(ECHO_ENV).is_ok_and(|v| v == "1");
        if let Some(stdout) = child.stdout.take() {
            spawn_reader(&spec.label, Stream::Stdout, stdout, &lines, &open_pipes, echo);
        }
        if let Some(stderr) = child.stderr.take() {
            spawn_reader(&spec.label, Stream::Stderr, stderr, &lines, &open_pipes, echo);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                label: spec.label,
                pid,
                child: Mutex::new(child),
                lines,
                open_pipes,
                exit: Mutex::new(None),
                reap: spec.reap,
            }),
        })
    }

    /// The label given at spawn ("function", "extension", ...).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        self.collect(Some(Stream::Stdout))
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.collect(Some(Stream::Stderr))
    }

    /// stdout and stderr interleaved in arrival order, stderr lines prefixed with `! `.
    pub fn output(&self) -> String {
        self.collect(None)
    }

    fn collect(&self, only: Option<Stream>) -> String {
        let lines = lock(&self.inner.lines);
        let mut out = String::new();
        for line in lines.iter() {
            match only {
                Some(stream) if stream != line.stream => continue,
                None if line.stream == Stream::Stderr => out.push_str("! "),
                _ => {}
            }
            out.push_str(&line.text);
            out.push('\n');
        }
        out
    }

    /// Waits until a line of output (either stream) contains `needle`, and returns that line.
    pub async fn wait_for_output(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = lock(&self.inner.lines).iter().find(|line| line.text.contains(needle)) {
                return Ok(line.text.clone());
            }
            if Instant::now() >= deadline {
                return Err(Error::timeout(format!("{} to print {needle:?}", self.label()), timeout, self.output()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The exit status, if the process has exited. Once it reports an exit, the output of
    /// the process has been read to the end (unless a grandchild keeps its pipes open).
    pub fn try_exit(&self) -> Option<ExitStatus> {
        let mut exit = lock(&self.inner.exit);
        if exit.is_none()
            && let Ok(Some(status)) = lock(&self.inner.child).try_wait()
        {
            self.inner.drain();
            *exit = Some(status);
        }
        *exit
    }

    /// Whether the process is still running (a stopped, frozen process counts as running).
    pub fn is_running(&self) -> bool {
        self.try_exit().is_none()
    }

    /// Whether the process is stopped by SIGSTOP (frozen). Linux only: reads `/proc`.
    pub fn is_stopped(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) else {
            return false;
        };
        // The state follows the parenthesised command name: "PID (comm) S ...".
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state == 'T' || state == 't')
    }

    /// Waits until the process is stopped (frozen). A SIGSTOP takes effect asynchronously,
    /// so this is the way to assert a freeze.
    pub async fn wait_stopped(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.is_stopped() {
            if Instant::now() >= deadline {
                return Err(Error::timeout(format!("{} to be stopped", self.label()), timeout, self.output()));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(Error::timeout(format!("{} to exit", self.label()), timeout, self.output()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends SIGTERM (the signal Lambda sends the runtime at shutdown).
    pub fn terminate(&self) -> Result<()> {
        self.signal(nix::sys::signal::Signal::SIGTERM)
    }

    /// Sends SIGCONT, undoing a freeze.
    pub fn resume(&self) -> Result<()> {
        self.signal(nix::sys::signal::Signal::SIGCONT)
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        if self.try_exit().is_some() {
            return Ok(());
        }
        let pid = i32::try_from(self.pid()).map_err(|_| Error::Process(format!("pid {} out of range", self.pid())))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
            .map_err(|e| Error::io(format!("signal {signal} to {}", self.label()), e.into()))
    }

    /// Kills the process (SIGKILL; works on a frozen process too) and, unless it was spawned
    /// for a freezer, reaps it. Returns the exit status when known.
    pub fn kill(&self) -> Option<ExitStatus> {
        self.inner.kill()
    }
}

impl Inner {
    /// Waits (briefly, bounded) for the reader threads to reach the end of the pipes, so the
    /// last lines a process printed before exiting are captured.
    fn drain(&self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.open_pipes.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn kill(&self) -> Option<ExitStatus> {
        let mut exit = lock(&self.exit);
        if exit.is_some() {
            return *exit;
        }
        let mut child = lock(&self.child);
        if let Ok(Some(status)) = child.try_wait() {
            self.drain();
            *exit = Some(status);
            return *exit;
        }
        let _ = child.kill();
        if self.reap
            && let Ok(status) = child.wait()
        {
            self.drain();
            *exit = Some(status);
        }
        *exit
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            self.drain();
            let lines = lock(&self.lines);
            eprintln!("----- {} (pid {}): {} line(s) of output -----", self.label, self.pid, lines.len());
            for line in lines.iter() {
                let mark = if line.stream == Stream::Stderr { "!" } else { " " };
                eprintln!("{mark} {}", line.text);
            }
            eprintln!("----- end of {} -----", self.label);
        }
    }
}

fn spawn_reader<R: Read + Send + 'static>(
    label: &str,
    stream: Stream,
    pipe: R,
    lines: &Arc<Mutex<VecDeque<Line>>>,
    open_pipes: &Arc<AtomicUsize>,
    echo: bool,
) {
    let lines = Arc::clone(lines);
    let open = Arc::clone(open_pipes);
    open.fetch_add(1, Ordering::AcqRel);
    let open_in_thread = Arc::clone(&open);
    let label = label.to_owned();
    let spawned = std::thread::Builder::new().name(format!("{label}-{stream:?}")).spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_owned();
                    if echo {
                        eprintln!("[{label}] {text}");
                    }
                    let mut lines = lock(&lines);
                    if lines.len() >= MAX_LINES {
                        lines.pop_front();
                    }
                    lines.push_back(Line { stream, text });
                }
            }
        }
        open_in_thread.fetch_sub(1, Ordering::AcqRel);
    });
    if spawned.is_err() {
        // A reader that cannot start only loses captured output; the process still runs.
        open.fetch_sub(1, Ordering::AcqRel);
    }
}
