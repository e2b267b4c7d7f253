//! The serial link to one KDC101: messages out and in, and everything the
//! controller sends unasked.
//!
//! Once told `HW_START_UPDATEMSGS`, the controller sends a status update
//! every 100 ms, and stops after about 50 if the host does not acknowledge
//! them (`MOT_ACK_DCSTATUSUPDATE`). The link has no thread of its own: it
//! reads the wire whenever the driver uses it. Each operation first takes
//! in what arrived since the last one (status updates, the end of a move
//! started without waiting, an error report), acknowledging the updates;
//! while it waits for a reply or for a move to end it goes on reading and
//! acknowledging them. Between calls the controller's unacknowledged-update
//! limit is what keeps the unread bytes bounded (about 1 KB).
//!
//! Failures: a controller that says nothing in time is a `TimeoutError`; a
//! header no KDC101 sends (noise, or a stream out of step) is a
//! `ConnectionError`, after which what is buffered is discarded; a lost
//! port is a `ConnectionError` that marks the link [`lost`](Link::lost), to
//! be opened again. Every read is bounded: a header is checked against the
//! length the protocol gives its message before its data is read.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use instrument_io::{Options, Resource, Transport};
use pyrolab_plugin_api::prelude::*;
use pyrolab_plugin_api::tracing;

use crate::apt::{self, DcStatus, Frame, Header, HwInfo, RichResponse, id};

/// The KDC101's baud rate (8 data bits, 1 stop bit, no parity).
pub const BAUD_RATE: u32 = 115_200;
/// How often status updates are acknowledged while they are read (the
/// controller wants one at least every second).
const ACK_INTERVAL: Duration = Duration::from_millis(500);
/// The most messages one catch-up reads, so a controller that floods the
/// line cannot keep a call from ending.
const MAX_CAUGHT_UP: usize = 1000;
/// How long a catch-up waits for more once the line is quiet.
const QUIET: Duration = Duration::from_millis(1);

/// What an operation waits for the controller to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaiting {
    /// `MOT_MOVE_COMPLETED` (a move, or a single-step jog).
    Move,
    /// `MOT_MOVE_HOMED`.
    Home,
    /// `MOT_MOVE_STOPPED`, or a status showing no motion.
    Stop,
}

/// How an awaited motion ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed(DcStatus),
    Homed,
    /// Stopped before its end: by a stop, a limit switch, the panel.
    Stopped(DcStatus),
}

/// Why no message was read.
enum Failure {
    /// Nothing came in time.
    Silent,
    /// Bytes that are no message from a KDC101.
    Garbled(DriverError),
    /// The port failed, or a message was cut short.
    Failed(DriverError),
}

/// The link to one controller.
pub struct Link {
    /// Behind a mutex only to make the driver `Sync`, as a service must
    /// be (a serial port is `Send` only); the link is used through
    /// `&mut`, so it is never locked.
    transport: Mutex<Box<dyn Transport>>,
    resource: Resource,
    /// How long a reply may take.
    timeout: Duration,
    last_ack: Option<Instant>,
    status: Option<DcStatus>,
    awaiting: Option<Awaiting>,
    outcome: Option<Outcome>,
    lost: bool,
}

impl Link {
    /// Opens the controller's serial port.
    pub fn open(resource: &Resource, timeout: Duration) -> Result<Link> {
        let options = Options {
            timeout,
            baudrate: BAUD_RATE,
            ..Options::default()
        };
        let transport = instrument_io::open(resource, &options)?;
        Ok(Link {
            transport: Mutex::new(transport),
            resource: resource.clone(),
            timeout,
            last_ack: None,
            status: None,
            awaiting: None,
            outcome: None,
            lost: false,
        })
    }

    /// Whether the port was lost: the link is done with, the next one must
    /// be opened anew.
    pub fn lost(&self) -> bool {
        self.lost
    }

    /// The motion being waited for, if any.
    pub fn awaiting(&self) -> Option<Awaiting> {
        self.awaiting
    }

    /// The last status the controller sent.
    pub fn last_status(&self) -> Option<DcStatus> {
        self.status
    }

    fn wire(&mut self) -> &mut dyn Transport {
        self.transport
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_mut()
    }

    fn port(&self) -> String {
        match &self.resource {
            Resource::Serial { port } => port.clone(),
            other => other.to_string(),
        }
    }

    /// Starts a session, as the protocol document has a host do: quiets
    /// and purges the line, announces the host (`HW_NO_FLASH_PROGRAMMING`),
    /// reads what the controller is (`HW_REQ_INFO`), enables its channel
    /// and starts its status updates.
    pub fn start_session(&mut self) -> Result<HwInfo> {
        // Updates a previous session left running would arrive in the
        // middle of the replies; stop them and drop what is on the way.
        self.send(&Frame::short(id::HW_STOP_UPDATEMSGS, 0, 0))?;
        std::thread::sleep(Duration::from_millis(50));
        self.clear()?;
        self.send(&Frame::short(id::HW_NO_FLASH_PROGRAMMING, 0, 0))?;
        let info = self.request(&Frame::short(id::HW_REQ_INFO, 0, 0), id::HW_GET_INFO)?;
        let info = HwInfo::decode(info.data());
        self.send(&Frame::short(
            id::MOD_SET_CHANENABLESTATE,
            apt::CHANNEL as u8,
            0x01,
        ))?;
        self.send(&Frame::short(id::HW_START_UPDATEMSGS, 0, 0))?;
        Ok(info)
    }

    /// Ends the session: the status updates stop.
    pub fn end_session(&mut self) {
        let _ = self.send(&Frame::short(id::HW_STOP_UPDATEMSGS, 0, 0));
    }

    fn clear(&mut self) -> Result<()> {
        let cleared = self.wire().clear();
        cleared.map_err(|err| self.failed(err))
    }

    /// Sends one message.
    pub fn send(&mut self, frame: &Frame) -> Result<()> {
        tracing::trace!(message = %apt::name(frame.id), "sending");
        let sent = self.wire().write(&frame.encode());
        sent.map_err(|err| self.failed(err))
    }

    /// A transport error; a lost port marks the link lost.
    fn failed(&mut self, err: DriverError) -> DriverError {
        if err.kind() == ErrorKind::ConnectionError {
            self.lost = true;
            return DriverError::connection(format!(
                "lost the KDC101 on {}: {}",
                self.port(),
                err.message()
            ));
        }
        err
    }

    /// Reads one message, waiting `wait` at most for it to begin.
    fn read_frame(&mut self, wait: Duration) -> Result<Frame, Failure> {
        self.wire().set_timeout(wait.max(QUIET));
        let header = match self.wire().read_exact(apt::HEADER_LEN) {
            Ok(header) => header,
            Err(err) if err.kind() == ErrorKind::TimeoutError => return Err(Failure::Silent),
            Err(err) => return Err(Failure::Failed(self.failed(err))),
        };
        let header: [u8; apt::HEADER_LEN] = header.try_into().expect("read_exact's length");
        let (message, len) = match apt::parse_header(header) {
            Ok(Header::Short { id, param1, param2 }) => {
                return Ok(Frame::short(id, param1, param2));
            }
            Ok(Header::Long { id, len }) => (id, len),
            Err(garbled) => {
                // Out of step with the stream: what is buffered is no use.
                let _ = self.wire().clear();
                return Err(Failure::Garbled(DriverError::connection(format!(
                    "garbled reply from the KDC101 on {}: {garbled}",
                    self.port()
                ))));
            }
        };
        // The data follows its header at once.
        let timeout = self.timeout;
        self.wire().set_timeout(timeout);
        match self.wire().read_exact(len) {
            Ok(data) => Ok(Frame {
                id: message,
                body: apt::Body::Data(data),
            }),
            Err(err) if err.kind() == ErrorKind::TimeoutError => {
                Err(Failure::Failed(DriverError::connection(format!(
                    "the KDC101 on {} sent the header of {} but not its {len} bytes of data",
                    self.port(),
                    apt::name(message)
                ))))
            }
            Err(err) => Err(Failure::Failed(self.failed(err))),
        }
    }

    /// Takes in a message: status, the end of a motion, or an error the
    /// controller reports (returned as the error).
    fn absorb(&mut self, frame: &Frame) -> Result<()> {
        match frame.id {
            id::MOT_GET_DCSTATUSUPDATE => {
                let status = DcStatus::decode(frame.data());
                self.status = Some(status);
                if self.awaiting == Some(Awaiting::Stop) && status.bits & apt::bits::IN_MOTION == 0
                {
                    self.end(Outcome::Stopped(status));
                }
                self.acknowledge()?;
            }
            id::MOT_MOVE_COMPLETED => {
                let status = DcStatus::decode(frame.data());
                self.status = Some(status);
                if self.awaiting == Some(Awaiting::Move) {
                    self.end(Outcome::Completed(status));
                }
            }
            id::MOT_MOVE_STOPPED => {
                let status = DcStatus::decode(frame.data());
                self.status = Some(status);
                if self.awaiting.is_some() {
                    self.end(Outcome::Stopped(status));
                }
            }
            id::MOT_MOVE_HOMED if self.awaiting == Some(Awaiting::Home) => {
                self.end(Outcome::Homed);
            }
            id::HW_RICHRESPONSE => {
                let report = RichResponse::decode(frame.data());
                if is_motion(report.message) {
                    self.awaiting = None;
                }
                return Err(DriverError::runtime(format!(
                    "the KDC101 refused {}: error {}: {}",
                    apt::name(report.message),
                    report.code,
                    report.notes
                )));
            }
            id::HW_RESPONSE => {
                self.awaiting = None;
                return Err(DriverError::runtime(
                    "the KDC101 reports a fault (HW_RESPONSE); see its front panel",
                ));
            }
            id::HW_DISCONNECT => {
                self.lost = true;
                return Err(DriverError::connection(format!(
                    "the KDC101 on {} is disconnecting (HW_DISCONNECT)",
                    self.port()
                )));
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, outcome: Outcome) {
        self.awaiting = None;
        self.outcome = Some(outcome);
    }

    /// Acknowledges status updates often enough that they keep coming.
    fn acknowledge(&mut self) -> Result<()> {
        if self.last_ack.is_some_and(|at| at.elapsed() < ACK_INTERVAL) {
            return Ok(());
        }
        self.last_ack = Some(Instant::now());
        self.send(&Frame::short(id::MOT_ACK_DCSTATUSUPDATE, 0, 0))
    }

    /// Takes in everything that arrived since the last operation. Noise is
    /// discarded (it was a reply to nobody); an error the controller
    /// reported meanwhile (for a move started without waiting) is returned
    /// once everything is read.
    pub fn catch_up(&mut self) -> Result<()> {
        let mut reported = None;
        for _ in 0..MAX_CAUGHT_UP {
            match self.read_frame(QUIET) {
                Ok(frame) => {
                    if let Err(err) = self.absorb(&frame) {
                        if self.lost {
                            return Err(err);
                        }
                        reported.get_or_insert(err);
                    }
                }
                Err(Failure::Silent) => break,
                Err(Failure::Garbled(err)) => {
                    tracing::warn!("discarding what the KDC101 sent unasked: {}", err.message());
                }
                Err(Failure::Failed(err)) => return Err(err),
            }
        }
        match reported {
            Some(err) => Err(DriverError::new(
                err.kind(),
                format!("{} (reported since the last call)", err.message()),
            )),
            None => Ok(()),
        }
    }

    /// Sends `frame` and returns the reply `reply`.
    pub fn request(&mut self, frame: &Frame, reply: u16) -> Result<Frame> {
        self.catch_up()?;
        self.send(frame)?;
        self.reply(reply, frame.id)
    }

    /// Sends `set`, then `request`, and returns the reply `reply`: the
    /// controller answers in order, so an error it reports for `set`
    /// arrives first and is raised.
    pub fn set_and_read(&mut self, set: &Frame, request: &Frame, reply: u16) -> Result<Frame> {
        self.catch_up()?;
        self.send(set)?;
        self.send(request)?;
        self.reply(reply, set.id)
    }

    /// Sends a command that has no reply.
    pub fn command(&mut self, frame: &Frame) -> Result<()> {
        self.catch_up()?;
        self.send(frame)
    }

    /// A status taken now (`MOT_REQ_DCSTATUSUPDATE`).
    pub fn fresh_status(&mut self) -> Result<DcStatus> {
        let reply = self.request(
            &Frame::request(id::MOT_REQ_DCSTATUSUPDATE),
            id::MOT_GET_DCSTATUSUPDATE,
        )?;
        Ok(DcStatus::decode(reply.data()))
    }

    /// Reads until message `reply` comes, within the timeout.
    fn reply(&mut self, reply: u16, asked: u16) -> Result<Frame> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DriverError::timeout(format!(
                    "the KDC101 on {} did not answer {} within {:.1} s",
                    self.port(),
                    apt::name(asked),
                    self.timeout.as_secs_f64()
                )));
            }
            match self.read_frame(left) {
                Ok(frame) => {
                    self.absorb(&frame)?;
                    if frame.id == reply {
                        return Ok(frame);
                    }
                }
                Err(Failure::Silent) => {}
                Err(Failure::Garbled(err) | Failure::Failed(err)) => return Err(err),
            }
        }
    }

    /// Starts a motion with `frame`, to be waited for as `awaiting`.
    pub fn start(&mut self, frame: &Frame, awaiting: Option<Awaiting>) -> Result<()> {
        self.catch_up()?;
        self.outcome = None;
        self.awaiting = awaiting;
        let sent = self.send(frame);
        if sent.is_err() {
            self.awaiting = None;
        }
        sent
    }

    /// Waits for the awaited motion to end, until `deadline`; reads (and
    /// acknowledges) the status updates meanwhile. A controller that sends
    /// nothing for the timeout has stopped its updates: a `TimeoutError`
    /// then, rather than at the deadline.
    pub fn wait(&mut self, deadline: Instant, what: &str) -> Result<Option<Outcome>> {
        let started = Instant::now();
        loop {
            if self.awaiting.is_none() {
                return Ok(self.outcome.take());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DriverError::timeout(format!(
                    "{what} did not end within {:.1} s",
                    deadline.duration_since(started).as_secs_f64()
                )));
            }
            let wait = (deadline - now).min(self.timeout);
            match self.read_frame(wait) {
                Ok(frame) => self.absorb(&frame)?,
                Err(Failure::Silent) if wait == self.timeout => {
                    return Err(DriverError::timeout(format!(
                        "the KDC101 on {} sent nothing for {:.1} s during {what} (no status updates)",
                        self.port(),
                        self.timeout.as_secs_f64()
                    )));
                }
                Err(Failure::Silent) => {}
                Err(Failure::Garbled(err) | Failure::Failed(err)) => return Err(err),
            }
        }
    }
}

/// Whether message `id` starts or stops a motion.
fn is_motion(message: u16) -> bool {
    matches!(
        message,
        id::MOT_MOVE_HOME
            | id::MOT_MOVE_RELATIVE
            | id::MOT_MOVE_ABSOLUTE
            | id::MOT_MOVE_VELOCITY
            | id::MOT_MOVE_JOG
            | id::MOT_MOVE_STOP
    )
}
