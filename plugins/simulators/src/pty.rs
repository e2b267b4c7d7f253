//! A serial instrument on a pseudo-terminal: a PTY pair, the simulated
//! instrument on the master side, and the slave's path (`/dev/pts/N`) for
//! the driver, which opens it as it would the instrument's USB serial
//! port (`ASRL/dev/pts/N::INSTR`).
//!
//! The device is given every byte the driver writes and answers with
//! bytes; it is also polled every few milliseconds, for instruments that
//! speak unasked (status updates, the end of a move).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{OptionalActions, tcgetattr, tcsetattr};

/// A byte-stream instrument.
pub trait SerialDevice: Send + 'static {
    /// The bytes the driver sent (any split: part of a message, or
    /// several); returns what the instrument sends back now.
    fn receive(&mut self, bytes: &[u8], now: Instant) -> Vec<u8>;

    /// Called every [`POLL_INTERVAL`]; returns what the instrument sends
    /// unasked.
    fn poll(&mut self, _now: Instant) -> Vec<u8> {
        Vec::new()
    }
}

/// How often the device is polled when the driver is silent.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The simulated instrument on a PTY; unplugged when dropped.
pub struct PtyPort {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    /// Our own handle on the slave side: while one is open, the master
    /// does not read EIO between the driver's connections.
    _slave: File,
}

impl PtyPort {
    /// Serves `device` on a new PTY.
    pub fn start(device: impl SerialDevice) -> io::Result<PtyPort> {
        // CLOEXEC: programs started later must not hold the instrument's end.
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let name = ptsname(&master, Vec::new())?;
        let path = PathBuf::from(name.to_string_lossy().into_owned());
        // Raw: binary protocols need every byte as it is (no echo, no
        // CR/LF translation, no line editing).
        let mut termios = tcgetattr(&master)?;
        termios.make_raw();
        tcsetattr(&master, OptionalActions::Now, &termios)?;
        let slave = open_slave(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("simulated serial instrument".into())
                .spawn(move || serve(master, device, &stop))?
        };
        Ok(PtyPort {
            path,
            stop,
            thread: Some(thread),
            _slave: slave,
        })
    }

    /// The serial port to give the driver (`/dev/pts/N`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The VISA resource naming it (`ASRL/dev/pts/N::INSTR`).
    pub fn resource(&self) -> String {
        format!("ASRL{}::INSTR", self.path.display())
    }

    /// Pulls the cable: the instrument stops and the master side closes.
    pub fn unplug(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PtyPort {
    fn drop(&mut self) {
        self.unplug();
    }
}

fn open_slave(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(path)
}

/// The instrument's loop: bytes in, bytes out, until unplugged.
fn serve(master: OwnedFd, mut device: impl SerialDevice, stop: &AtomicBool) {
    let mut port = File::from(master);
    let mut buffer = [0u8; 4096];
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: POLL_INTERVAL.as_nanos() as i64,
    };
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(&port, PollFlags::IN)];
        let ready = match poll(&mut fds, Some(&timeout)) {
            Ok(ready) => ready,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        };
        let mut answer = Vec::new();
        if ready > 0 {
            match port.read(&mut buffer) {
                Ok(0) => {}
                Ok(n) => answer = device.receive(&buffer[..n], Instant::now()),
                // EIO: no slave open at the moment; wait for one.
                Err(_) => thread::sleep(POLL_INTERVAL),
            }
        }
        answer.extend(device.poll(Instant::now()));
        if !answer.is_empty() && port.write_all(&answer).is_err() {
            break;
        }
    }
}
