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

/// The simulated instrument behind a serial-to-Ethernet adapter (a
/// device server that passes a serial line through a TCP socket, as labs
/// put instruments on the network): one client at a time, the device's
/// state kept between them. Drivers reach it as
/// `TCPIP0::HOST::PORT::SOCKET`.
pub struct TcpPort {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TcpPort {
    /// Serves `device` on `host:port` (0: a free port).
    pub fn start(device: impl SerialDevice, host: &str, port: u16) -> io::Result<TcpPort> {
        let listener = std::net::TcpListener::bind((host, port))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("simulated serial instrument on TCP".into())
                .spawn(move || serve_tcp(&listener, device, &stop))?
        };
        Ok(TcpPort {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops serving; the client's connection closes.
    pub fn unplug(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TcpPort {
    fn drop(&mut self) {
        self.unplug();
    }
}

fn serve_tcp(listener: &std::net::TcpListener, mut device: impl SerialDevice, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let mut client = match listener.accept() {
            Ok((client, _)) => client,
            Err(_) => {
                // Nobody yet: the device goes on (a move ends) meanwhile.
                let _ = device.poll(Instant::now());
                thread::sleep(POLL_INTERVAL);
                continue;
            }
        };
        let _ = client.set_nonblocking(false);
        let _ = client.set_nodelay(true);
        let _ = client.set_read_timeout(Some(POLL_INTERVAL));
        let mut buffer = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            let mut answer = match client.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => device.receive(&buffer[..n], Instant::now()),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    Vec::new()
                }
                Err(_) => break,
            };
            answer.extend(device.poll(Instant::now()));
            if !answer.is_empty() && client.write_all(&answer).is_err() {
                break;
            }
        }
    }
}

/// Where a simulated serial instrument is plugged in: a pseudo-terminal,
/// or a serial-to-Ethernet adapter.
pub enum Plug {
    Pty(PtyPort),
    Tcp(TcpPort),
}

impl Plug {
    /// The pseudo-terminal's path (`/dev/pts/N`); empty behind a TCP
    /// adapter.
    pub fn path(&self) -> &Path {
        match self {
            Plug::Pty(pty) => pty.path(),
            Plug::Tcp(_) => Path::new(""),
        }
    }

    /// The VISA resource naming it: `ASRL/dev/pts/N::INSTR`, or
    /// `TCPIP0::127.0.0.1::PORT::SOCKET` behind a TCP adapter.
    pub fn resource(&self) -> String {
        match self {
            Plug::Pty(pty) => pty.resource(),
            Plug::Tcp(tcp) => format!("TCPIP0::127.0.0.1::{}::SOCKET", tcp.port()),
        }
    }

    /// Pulls the cable.
    pub fn unplug(&mut self) {
        match self {
            Plug::Pty(pty) => pty.unplug(),
            Plug::Tcp(tcp) => tcp.unplug(),
        }
    }
}
