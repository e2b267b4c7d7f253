//! A TSL-550 on a pseudo-terminal: the test makes a PTY pair, runs the
//! simulated laser (`tsl550::simulator`) on the master side, and hands the
//! slave's path (`/dev/pts/N`) to the driver as its serial port. The
//! driver talks to it exactly as to the laser's USB port.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{OptionalActions, tcgetattr, tcsetattr};
use tsl550::simulator::{Response, Simulator};

/// How the simulated laser behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answers as the laser does.
    Normal,
    /// Reads commands and answers nothing (hung, or the wrong port).
    Mute,
    /// Answers noise (a wrong baud rate, a bad cable).
    Garbage,
}

/// The simulated laser on a PTY; unplugged when dropped.
pub struct PtyLaser {
    path: PathBuf,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    /// The test's own handle on the slave side: while any is open, the
    /// master never reads EIO between the driver's connections.
    _slave: File,
}

/// How long the laser takes to answer a command (its processing time).
const ANSWER_DELAY: Duration = Duration::from_millis(2);

impl PtyLaser {
    /// Starts a laser on a new PTY.
    pub fn start() -> PtyLaser {
        // CLOEXEC: the daemons the test starts must not hold the laser's end.
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open a PTY master");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let path = PathBuf::from(name.to_str().expect("a UTF-8 path"));
        // Raw: no echo, no line editing, CR passed through as it is.
        let mut termios = tcgetattr(&master).expect("tcgetattr");
        termios.make_raw();
        tcsetattr(&master, OptionalActions::Now, &termios).expect("tcsetattr");
        let slave = open_slave(&path);
        let mode = Arc::new(Mutex::new(Mode::Normal));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (mode, received, stop) = (mode.clone(), received.clone(), stop.clone());
            thread::spawn(move || serve(master, &mode, &received, &stop))
        };
        PtyLaser {
            path,
            mode,
            received,
            stop,
            thread: Some(thread),
            _slave: slave,
        }
    }

    /// The serial port to give the driver.
    pub fn port(&self) -> &Path {
        &self.path
    }

    /// Changes how it behaves from the next command on.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    /// Every command line received so far.
    pub fn received(&self) -> Vec<String> {
        self.received.lock().expect("received").clone()
    }

    /// Pulls the cable: the master side closes, and the driver's port
    /// hangs up.
    pub fn unplug(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PtyLaser {
    fn drop(&mut self) {
        self.unplug();
    }
}

fn open_slave(path: &Path) -> File {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(path)
        .expect("open the PTY slave")
}

/// The laser's loop: lines in, answers out, until unplugged.
fn serve(master: OwnedFd, mode: &Mutex<Mode>, received: &Mutex<Vec<String>>, stop: &AtomicBool) {
    let mut simulator = Simulator::new();
    let mut port = File::from(master);
    let mut line = Vec::new();
    let mut buffer = [0u8; 256];
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(&port, PollFlags::IN)];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let n = match port.read(&mut buffer) {
            Ok(0) => continue,
            Ok(n) => n,
            // EIO: no slave open at the moment; wait for one.
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        for &byte in &buffer[..n] {
            if byte != b'\r' && byte != b'\n' {
                line.push(byte);
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let command = String::from_utf8_lossy(&line).into_owned();
            line.clear();
            received.lock().expect("received").push(command.clone());
            thread::sleep(ANSWER_DELAY);
            let answer = match *mode.lock().expect("mode") {
                Mode::Mute => continue,
                Mode::Garbage => b"\x15\xfe#%\x07\r".to_vec(),
                Mode::Normal => match simulator.respond(&command, Instant::now()) {
                    Response::Line(text) => format!("{text}\r").into_bytes(),
                    Response::Binary(bytes) => bytes,
                },
            };
            if port.write_all(&answer).is_err() {
                break;
            }
        }
    }
}
