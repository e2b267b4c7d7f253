//! The instrument's side of VXI-11, for simulators: a portmapper that
//! answers `GETPORT` for the core channel, and the core channel's
//! `create_link`, `device_write`, `device_read` and `destroy_link`,
//! passing whole messages to a [`Device`].

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{
    CREATE_LINK, DESTROY_LINK, DEVICE_CORE, DEVICE_READ, DEVICE_WRITE, ERROR_IO_TIMEOUT, FLAG_END,
    FLAG_TERMCHAR, PORTMAPPER_GETPORT, PORTMAPPER_PROGRAM, REASON_CHR, REASON_END, REASON_REQCNT,
    Reader, Xdr, read_record, write_record,
};

/// What a simulated instrument does with messages.
pub trait Device: Send {
    /// A whole message from a client (its writes up to the one marked
    /// END).
    fn message(&mut self, data: &[u8]);
    /// What it has to say, taken by reads.
    fn output(&mut self) -> &mut Vec<u8>;
}

/// A running VXI-11 server; stops when dropped.
pub struct Server {
    portmapper: SocketAddr,
    core: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Serves `device` on `host`, on free ports for the portmapper and the
    /// core channel.
    pub fn start(host: &str, device: Arc<Mutex<dyn Device>>) -> io::Result<Server> {
        Server::start_on(host, 0, device)
    }

    /// Serves `device` on `host`, its portmapper on `portmapper_port` (0:
    /// a free one; 111 is the standard's, and needs privileges) and the
    /// core channel on a free port.
    pub fn start_on(
        host: &str,
        portmapper_port: u16,
        device: Arc<Mutex<dyn Device>>,
    ) -> io::Result<Server> {
        let portmapper = TcpListener::bind((host, portmapper_port))?;
        let core = TcpListener::bind((host, 0))?;
        let (portmapper_address, core_address) = (portmapper.local_addr()?, core.local_addr()?);
        let stop = Arc::new(AtomicBool::new(false));
        let core_port = core_address.port();
        spawn_listener(portmapper, Arc::clone(&stop), move |stream| {
            serve_portmapper(stream, core_port)
        })?;
        spawn_listener(core, Arc::clone(&stop), move |stream| {
            serve_core(stream, &device)
        })?;
        Ok(Server {
            portmapper: portmapper_address,
            core: core_address,
            stop,
        })
    }

    /// The portmapper's port (what a client's `portmapper_port` is).
    pub fn portmapper_port(&self) -> u16 {
        self.portmapper.port()
    }

    /// The core channel's address.
    pub fn core_address(&self) -> SocketAddr {
        self.core
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting threads.
        let _ = TcpStream::connect(self.portmapper);
        let _ = TcpStream::connect(self.core);
    }
}

fn spawn_listener(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    serve: impl Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
) -> io::Result<()> {
    let serve = Arc::new(serve);
    thread::Builder::new()
        .name("vxi11-listener".to_owned())
        .spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let serve = Arc::clone(&serve);
                let _ = thread::Builder::new()
                    .name("vxi11-connection".to_owned())
                    .spawn(move || serve(stream));
            }
        })?;
    Ok(())
}

/// Reads a call: its xid, program, procedure and arguments.
fn read_call(stream: &mut TcpStream) -> io::Result<(u32, u32, u32, Reader)> {
    let record = read_record(stream)?;
    let mut call = Reader::new(record);
    let bad = |err: String| io::Error::new(io::ErrorKind::InvalidData, err);
    let xid = call.u32().map_err(bad)?;
    let _kind = call.u32().map_err(bad)?;
    let _rpc_version = call.u32().map_err(bad)?;
    let program = call.u32().map_err(bad)?;
    let _version = call.u32().map_err(bad)?;
    let procedure = call.u32().map_err(bad)?;
    let _credentials = (call.u32().map_err(bad)?, call.opaque().map_err(bad)?);
    let _verifier = (call.u32().map_err(bad)?, call.opaque().map_err(bad)?);
    Ok((xid, program, procedure, call))
}

fn reply(stream: &mut TcpStream, xid: u32, results: &Xdr) -> io::Result<()> {
    let mut message = Xdr::default();
    message.u32(xid);
    message.u32(1); // REPLY
    message.u32(0); // accepted
    message.u32(0); // verifier: AUTH_NONE
    message.u32(0);
    message.u32(0); // SUCCESS
    message.0.extend_from_slice(&results.0);
    write_record(stream, &message.0)
}

fn serve_portmapper(mut stream: TcpStream, core_port: u16) -> io::Result<()> {
    loop {
        let (xid, program, procedure, mut args) = read_call(&mut stream)?;
        let mut results = Xdr::default();
        let asked_for_core = args.u32().ok() == Some(DEVICE_CORE);
        let port =
            if program == PORTMAPPER_PROGRAM && procedure == PORTMAPPER_GETPORT && asked_for_core {
                u32::from(core_port)
            } else {
                0
            };
        results.u32(port);
        reply(&mut stream, xid, &results)?;
    }
}

fn serve_core(mut stream: TcpStream, device: &Arc<Mutex<dyn Device>>) -> io::Result<()> {
    let bad = |err: String| io::Error::new(io::ErrorKind::InvalidData, err);
    let mut message = Vec::new();
    loop {
        let (xid, program, procedure, mut args) = read_call(&mut stream)?;
        let mut results = Xdr::default();
        if program != DEVICE_CORE {
            results.u32(8); // operation not supported
            reply(&mut stream, xid, &results)?;
            continue;
        }
        match procedure {
            CREATE_LINK => {
                let _client = args.u32().map_err(bad)?;
                let _lock = args.u32().map_err(bad)?;
                let _lock_timeout = args.u32().map_err(bad)?;
                let _device = args.string().map_err(bad)?;
                results.u32(0); // no error
                results.u32(1); // link id
                results.u32(0); // abort port
                results.u32(1024 * 1024); // maxRecvSize
            }
            DEVICE_WRITE => {
                let _link = args.u32().map_err(bad)?;
                let _io_timeout = args.u32().map_err(bad)?;
                let _lock_timeout = args.u32().map_err(bad)?;
                let flags = args.u32().map_err(bad)?;
                let data = args.opaque().map_err(bad)?;
                message.extend_from_slice(&data);
                if flags & FLAG_END != 0 {
                    lock(device).message(&std::mem::take(&mut message));
                }
                results.u32(0);
                results.u32(data.len() as u32);
            }
            DEVICE_READ => {
                let _link = args.u32().map_err(bad)?;
                let size = args.u32().map_err(bad)? as usize;
                let io_timeout = Duration::from_millis(u64::from(args.u32().map_err(bad)?));
                let _lock_timeout = args.u32().map_err(bad)?;
                let flags = args.u32().map_err(bad)?;
                let term = args.u32().map_err(bad)? as u8;
                let term = (flags & FLAG_TERMCHAR != 0).then_some(term);
                match take_output(device, size.max(1), term, io_timeout) {
                    Some((data, reason)) => {
                        results.u32(0);
                        results.u32(reason);
                        results.opaque(&data);
                    }
                    None => {
                        results.u32(ERROR_IO_TIMEOUT);
                        results.u32(0);
                        results.opaque(&[]);
                    }
                }
            }
            DESTROY_LINK => {
                results.u32(0);
            }
            _ => {
                results.u32(8);
            }
        }
        reply(&mut stream, xid, &results)?;
    }
}

fn lock(device: &Arc<Mutex<dyn Device>>) -> std::sync::MutexGuard<'_, dyn Device + 'static> {
    device
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes up to `size` bytes of the device's output (to `term` and
/// including it, if given), waiting until `timeout` for some.
fn take_output(
    device: &Arc<Mutex<dyn Device>>,
    size: usize,
    term: Option<u8>,
    timeout: Duration,
) -> Option<(Vec<u8>, u32)> {
    let deadline = Instant::now() + timeout;
    loop {
        {
            let mut device = lock(device);
            let output = device.output();
            if !output.is_empty() {
                let at_term =
                    term.and_then(|t| output.iter().position(|&b| b == t).map(|at| at + 1));
                let len = at_term.unwrap_or(output.len()).min(size);
                let data: Vec<u8> = output.drain(..len).collect();
                let reason = if at_term == Some(len) {
                    REASON_CHR | REASON_END
                } else if output.is_empty() {
                    REASON_END
                } else {
                    REASON_REQCNT
                };
                return Some((data, reason));
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}
