//! One client connection: the handshake, then messages until the client
//! goes away. A malformed message closes this connection only, with the
//! reason logged; the daemon serves everyone else as before.
//!
//! The socket is non-blocking. Whenever it is ready, a worker of the
//! [event loop](super::reactor) claims the connection, reads what is
//! there, answers each message that is complete and writes the replies,
//! then lets go of it: it waits for the socket again, holding no thread
//! and, between messages, no buffers. A reply the client is slow to take
//! is kept and sent as the socket has room; the connection reads nothing
//! more until it is out.
//!
//! The socket itself is blocking, and every read and write says, per call,
//! not to wait: so that a worker that has just answered a call may wait
//! on this connection alone for the next one ([`Workers::linger`]), as a
//! thread of its own would, without changing the socket's mode.
//!
//! Only one worker serves a connection at a time. A worker told of a
//! connection another is serving leaves a note instead
//! ([`Connection::claim`]), and the one serving it looks at the socket
//! again before letting go ([`Connection::release`]), so no event is lost.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use abi_stable::std_types::RVec;
use pyrolab_plugin_api::Value;
use pyrolab_plugin_api::abi::lending::Lent;

use super::dispatch::{self, Job, Outcome};
use super::metrics::Refusal;
use super::poller::Happened;
use super::pyro::{DAEMON_OBJECT, daemon_metadata};
use super::{Sessions, Shared};
use crate::net::Stream;
use crate::sync::LockUnpoisoned;
use crate::wire::message::{Assembler, HEADER_SIZE, Message, annotation, flags, kind};
use crate::wire::scatter::Scatter;
use crate::wire::serializer::{self, Serializer};

/// A client whose next message starts to come this soon after its last
/// reply went out is waited for ([`Workers::linger`]); one that calls now
/// and then is not, so a crowd of such clients keeps no workers waiting.
/// Measured from the reply, not from the call before: how long a call runs
/// or its data takes to arrive says nothing of how soon the client comes
/// back.
const CHATTY: Duration = Duration::from_millis(2);

/// A payload with at least this much still to come is read straight into
/// its own buffer rather than through the worker's scratch buffer.
const DIRECT_READ: usize = 16 * 1024;

/// Incoming messages this large or larger count against the daemon's
/// `max_message_memory` while they are read and until they are answered;
/// smaller ones (each connection reads one at a time, and the number of
/// connections is bounded) do not, so a few hostile large messages cannot
/// keep every small call out.
pub(super) const BUDGETED_FROM: usize = 64 * 1024;

/// What a connection asks of the event loop's pool while a worker serves
/// it.
pub(super) trait Workers {
    /// A call begins: the pool may need another worker while this one is
    /// in a driver.
    fn before_call(&self);
    /// Whether the serving worker, which has just answered a message that
    /// came soon after the reply before ([`CHATTY`]) and has nothing else to
    /// do for this connection, may wait on it alone for
    /// its next message instead of going back to the poller (a client
    /// making calls one after another then costs no poller wake-up per
    /// call). The first `true` mutes the connection in the poller; keep
    /// asking before each wait, and call [`Workers::end_linger`] once done.
    fn linger(&self, connection: &Connection, already: bool) -> bool;
    /// The worker stops waiting on the connection alone: the poller
    /// reports it again (`Err` if it could not be made to).
    fn end_linger(&self, connection: &Connection) -> io::Result<()>;
    /// A client has sent its CONNECT: whether one of the daemon's
    /// `max_connections` places is free for it (then it is taken, and
    /// given back when the connection closes).
    fn take_place(&self) -> bool;
}

/// A client connection.
pub(super) struct Connection {
    /// The connection's number, unique within the daemon (locks and
    /// `session` instances belong to it).
    pub(super) id: u64,
    pub(super) stream: Stream,
    peer: String,
    /// When it was accepted.
    accepted: Instant,
    /// It holds one of the daemon's places ([`Workers::take_place`]):
    /// its handshake has come. Until then it may be cut short ([`Cut`]).
    placed: AtomicBool,
    /// When bytes last came from it, in milliseconds after `accepted`.
    heard: AtomicU64,
    /// Whether one of its calls runs now (silence then is not the
    /// client's: `commtimeout` does not count it).
    in_call: AtomicBool,
    /// Why the daemon cut it short, if it did ([`Cut`] as a number).
    cut: AtomicU8,
    /// [`FREE`], [`SERVED`] or [`SERVED_AND_NOTIFIED`].
    owner: AtomicU8,
    /// The peer has shut down its side: a short read no longer means the
    /// socket has nothing more, since the end is still to be read.
    peer_left: AtomicBool,
    state: Mutex<State>,
}

/// No worker is serving the connection.
const FREE: u8 = 0;
/// A worker is serving it.
const SERVED: u8 = 1;
/// A worker is serving it, and the socket had news meanwhile.
const SERVED_AND_NOTIFIED: u8 = 2;

struct State {
    phase: Phase,
    input: Assembler,
    /// Messages read and not yet answered: a client may send several at
    /// once (oneway calls).
    ready: VecDeque<Message>,
    /// A reply not yet wholly sent.
    output: Option<Outgoing>,
    /// Close once the output is out (after a CONNECTFAIL).
    close_after_output: bool,
    /// A worker waits on this connection alone; the poller does not
    /// report it meanwhile.
    lingering: bool,
    /// When the last reply was wholly sent.
    replied_at: Option<Instant>,
    /// When bytes last came: a call's time is counted from it (the
    /// request read), which saves reading the clock again.
    heard_at: Instant,
    /// The message being read or answered came soon after the last reply
    /// ([`CHATTY`]): its client is likely to send another soon.
    chatty: bool,
    /// What its large incoming messages hold of the daemon's
    /// `max_message_memory` ([`BUDGETED_FROM`]).
    held: u64,
    sessions: Sessions,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the CONNECT.
    Handshake,
    /// Connected: calls and pings.
    Serving,
}

/// Why the daemon closed a connection on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cut {
    /// Its handshake did not come within the daemon's `handshake_timeout`.
    HandshakeTimeout = 1,
    /// It was silent between calls for longer than `idle_timeout`.
    Idle = 2,
    /// It was the oldest of too many connections still in their
    /// handshake, and made way for a new one.
    Crowded = 3,
    /// It was silent, with no call of its running, for longer than
    /// `commtimeout`.
    CommTimeout = 4,
}

impl Cut {
    fn from_number(number: u8) -> Option<Cut> {
        match number {
            1 => Some(Cut::HandshakeTimeout),
            2 => Some(Cut::Idle),
            3 => Some(Cut::Crowded),
            4 => Some(Cut::CommTimeout),
            _ => None,
        }
    }
}

/// What the event loop does with the connection next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Waits for the socket: for bytes, or for room to send the rest of
    /// a reply.
    Wait,
    /// Closes it; with the reason to log when the client did not simply
    /// go away.
    Close(Option<String>),
    /// Lets go of it to run the oneway calls it left, unread bytes and
    /// all: reading no more meanwhile is the back-pressure that bounds
    /// the work and memory one client's oneway calls can take.
    Pause,
}

impl Connection {
    /// A newly accepted connection.
    pub(super) fn new(id: u64, stream: Stream) -> Connection {
        let peer = stream.peer();
        let client = stream.peer_address();
        Connection {
            id,
            stream,
            peer,
            accepted: Instant::now(),
            placed: AtomicBool::new(false),
            heard: AtomicU64::new(0),
            in_call: AtomicBool::new(false),
            cut: AtomicU8::new(0),
            owner: AtomicU8::new(FREE),
            peer_left: AtomicBool::new(false),
            state: Mutex::new(State {
                phase: Phase::Handshake,
                input: Assembler::default(),
                ready: VecDeque::new(),
                output: None,
                close_after_output: false,
                lingering: false,
                replied_at: None,
                heard_at: Instant::now(),
                chatty: false,
                held: 0,
                sessions: Sessions::new(id, client),
            }),
        }
    }

    /// Who is on the other end, for log lines.
    pub(super) fn peer(&self) -> &str {
        &self.peer
    }

    /// When it was accepted.
    pub(super) fn accepted(&self) -> Instant {
        self.accepted
    }

    /// Whether it holds one of the daemon's places (its handshake came).
    pub(super) fn is_placed(&self) -> bool {
        self.placed.load(Ordering::Acquire)
    }

    /// How long it has been silent: since bytes last came from it.
    pub(super) fn silent_for(&self, now: Instant) -> Duration {
        let heard = self.accepted + Duration::from_millis(self.heard.load(Ordering::Relaxed));
        now.saturating_duration_since(heard)
    }

    /// Closes the connection on the daemon's own account, for `why`: its
    /// socket is shut down, which the worker that sees it next takes as
    /// the end, logging `why` ([`Connection::cut_reason`]). `false` if it
    /// was cut short already.
    pub(super) fn cut_short(&self, why: Cut) -> bool {
        if self
            .cut
            .compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        true
    }

    /// Why it was cut short, if it was.
    pub(super) fn cut_reason(&self) -> Option<Cut> {
        Cut::from_number(self.cut.load(Ordering::Acquire))
    }

    /// Makes this worker the one serving the connection, after `happened`.
    /// `false`: another worker is serving it; it is told to look at the
    /// socket again.
    pub(super) fn claim(&self, happened: Happened) -> bool {
        if happened.peer_left {
            self.peer_left.store(true, Ordering::Release);
        }
        loop {
            match self
                .owner
                .compare_exchange(FREE, SERVED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(SERVED_AND_NOTIFIED) => return false,
                Err(_) => {
                    let noted = self.owner.compare_exchange(
                        SERVED,
                        SERVED_AND_NOTIFIED,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    if noted.is_ok() {
                        return false;
                    }
                    // It was let go of in between: try to claim it again.
                }
            }
        }
    }

    /// Lets go of the connection. `false`: the socket had news while it
    /// was being served, so the caller serves it again (and still owns it).
    pub(super) fn release(&self) -> bool {
        match self
            .owner
            .compare_exchange(SERVED, FREE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                self.owner.store(SERVED, Ordering::Release);
                false
            }
        }
    }

    /// Lets go of the connection whatever came meanwhile: the caller has
    /// the poller report it again ([`Poller::unmute`](super::poller::Poller::unmute)),
    /// so the news is not lost but goes to another worker.
    pub(super) fn let_go(&self) {
        self.owner.store(FREE, Ordering::Release);
    }

    /// Whether the connection is free, between messages and with nothing
    /// to send, so closing it loses nothing.
    /// Whether one of its calls runs now.
    pub(super) fn is_in_call(&self) -> bool {
        self.in_call.load(Ordering::Acquire)
    }

    pub(super) fn is_idle(&self) -> bool {
        if self.owner.load(Ordering::Acquire) != FREE {
            return false;
        }
        let Ok(state) = self.state.try_lock() else {
            return false;
        };
        state.output.is_none() && state.ready.is_empty() && state.input.is_between_messages()
    }

    /// Serves the connection as far as its socket allows: sends what is
    /// pending, answers what has arrived, reads what is there. Oneway
    /// calls to run once the connection is handed back go to `deferred`.
    /// `scratch` is the worker's read buffer.
    pub(super) fn serve(
        &self,
        shared: &Shared,
        scratch: &mut [u8],
        deferred: &mut Vec<Job>,
        workers: &dyn Workers,
    ) -> Next {
        let mut state = self.state.lock_unpoisoned();
        let mut next = self
            .advance(shared, &mut state, scratch, deferred, workers)
            .unwrap_or_else(|reason| Next::Close(Some(reason)));
        if state.lingering {
            state.lingering = false;
            if let Err(err) = workers.end_linger(self) {
                next = Next::Close(Some(format!("cannot wait for its socket: {err}")));
            }
        }
        if state.ready.is_empty() && state.ready.capacity() > 0 {
            // An idle connection keeps no buffers.
            state.ready = VecDeque::new();
        }
        next
    }

    fn advance(
        &self,
        shared: &Shared,
        state: &mut State,
        scratch: &mut [u8],
        deferred: &mut Vec<Job>,
        workers: &dyn Workers,
    ) -> Result<Next, String> {
        // Whether the last read took everything the socket had (it returned
        // less than asked for): then the next read would only say so, and
        // new bytes will be an event of their own.
        let mut drained = false;
        loop {
            if let Some(output) = &mut state.output {
                if !output.send(&self.stream)? {
                    return Ok(Next::Wait);
                }
                state.output = None;
                state.replied_at = Some(Instant::now());
                if state.close_after_output {
                    return Ok(Next::Close(None));
                }
            }
            if let Some(message) = state.ready.pop_front() {
                self.answer(shared, state, message, deferred, workers)?;
                account(shared, state)?;
                continue;
            }
            if shared.is_stopping() && state.input.is_between_messages() {
                return Ok(Next::Close(None));
            }
            if !deferred.is_empty() {
                // What it left to run comes before reading more from it.
                return Ok(Next::Pause);
            }
            let mut wait = false;
            if drained && !self.peer_left.load(Ordering::Acquire) {
                // Oneway calls left to run need the connection let go of.
                wait = state.chatty && deferred.is_empty() && self.linger(state, workers);
                if !wait {
                    return Ok(Next::Wait);
                }
            }
            match self.receive(shared, state, scratch, wait)? {
                Received::Some { drained: all } => {
                    drained = all;
                    account(shared, state)?;
                }
                // The socket is empty (a read that filled a large payload
                // exactly could not tell): the client may still be worth
                // waiting for.
                Received::Nothing if !wait => drained = true,
                Received::Nothing => return Ok(Next::Wait),
                Received::End => return Ok(Next::Close(None)),
            }
        }
    }

    /// Whether to wait on this connection alone for its next message (see
    /// [`Workers::linger`]).
    fn linger(&self, state: &mut State, workers: &dyn Workers) -> bool {
        let linger = workers.linger(self, state.lingering);
        state.lingering |= linger;
        linger
    }

    /// Reads what the socket has into `state`'s messages; with `wait`,
    /// waits for bytes up to the socket's read timeout.
    fn receive(
        &self,
        shared: &Shared,
        state: &mut State,
        scratch: &mut [u8],
        wait: bool,
    ) -> Result<Received, String> {
        let max_size = shared.settings.max_message_size;
        let closed_mid_message = || "connection closed in the middle of a message".to_owned();
        if let Some(payload) = state.input.payload_to_fill(DIRECT_READ) {
            let wanted = payload.capacity() - payload.len();
            let read = match retry(|| self.stream.receive_into_spare(payload, wait)) {
                Ok(0) => return Err(closed_mid_message()),
                Ok(read) => {
                    state.heard_at = self.heard_now();
                    read
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Received::Nothing);
                }
                Err(err) => return Err(format!("cannot read: {err}")),
            };
            if let Some(message) = state.input.complete(max_size).map_err(|e| e.to_string())? {
                state.ready.push_back(message);
            }
            return Ok(Received::Some {
                drained: read < wanted,
            });
        }
        let read = match retry(|| self.stream.receive(scratch, wait)) {
            Ok(0) if state.input.is_between_messages() => return Ok(Received::End),
            Ok(0) => return Err(closed_mid_message()),
            Ok(read) => {
                state.heard_at = self.heard_now();
                read
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(Received::Nothing),
            Err(err) => return Err(format!("cannot read: {err}")),
        };
        if state.input.is_between_messages() {
            // A message begins: its client came back this soon.
            state.chatty = state.replied_at.is_some_and(|at| at.elapsed() < CHATTY);
        }
        let mut bytes = &scratch[..read];
        while !bytes.is_empty() {
            let (used, message) = state
                .input
                .feed(bytes, max_size)
                .map_err(|err| err.to_string())?;
            bytes = &bytes[used..];
            state.ready.extend(message);
        }
        Ok(Received::Some {
            drained: read < scratch.len(),
        })
    }

    /// Gives back what the connection's messages held of the daemon's
    /// message memory (it is closing).
    pub(super) fn release_memory(&self, shared: &Shared) {
        let mut state = self.state.lock_unpoisoned();
        shared
            .message_memory
            .fetch_sub(std::mem::take(&mut state.held), Ordering::SeqCst);
    }

    /// Notes that bytes came now (see [`Connection::silent_for`]), and
    /// says when that is.
    fn heard_now(&self) -> Instant {
        let now = Instant::now();
        let since_accepted = now.saturating_duration_since(self.accepted).as_millis();
        self.heard.store(
            u64::try_from(since_accepted).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        now
    }

    /// Answers one message: its reply becomes the output.
    fn answer(
        &self,
        shared: &Shared,
        state: &mut State,
        message: Message,
        deferred: &mut Vec<Job>,
        workers: &dyn Workers,
    ) -> Result<(), String> {
        match state.phase {
            Phase::Handshake => {
                if message.kind != kind::CONNECT {
                    return Err(format!(
                        "expected a CONNECT handshake first, got message type {}",
                        message.kind
                    ));
                }
                if !workers.take_place() {
                    // Over the limit: a CONNECTFAIL saying why, so the
                    // client reports the reason instead of hanging.
                    tracing::warn!(
                        peer = %self.peer(),
                        "refusing a connection: already serving the maximum of {}",
                        shared.settings.max_connections
                    );
                    shared.metrics.refused(Refusal::MaxConnections);
                    state.output = refusal(shared, &message).map(Outgoing::frame);
                    state.close_after_output = true;
                    if state.output.is_none() {
                        return Err("could not tell a refused client why".to_owned());
                    }
                    return Ok(());
                }
                self.placed.store(true, Ordering::Release);
                // The TLS handshake is done by the time its CONNECT is read.
                state.sessions.set_identity(self.stream.peer_identity());
                let (accepted, reply) = handshake(shared, &message)?;
                state.output = Some(Outgoing::frame(reply));
                if accepted {
                    state.phase = Phase::Serving;
                } else {
                    shared.metrics.refused(Refusal::Handshake);
                    state.close_after_output = true;
                }
            }
            Phase::Serving => match message.kind {
                kind::PING => {
                    let pong = Message::new(
                        kind::PING,
                        message.serializer_id,
                        0,
                        message.seq,
                        b"pong".to_vec(),
                    );
                    state.output = Some(Outgoing::frame(pong.encode(false)));
                }
                kind::INVOKE => {
                    let serializer = serializer_for(&message)?;
                    workers.before_call();
                    let outcome = {
                        let _running = shared.call_running();
                        self.in_call.store(true, Ordering::Release);
                        let read_at = state.heard_at;
                        let outcome = dispatch::invoke(
                            shared,
                            &mut state.sessions,
                            serializer,
                            &message,
                            read_at,
                        );
                        self.in_call.store(false, Ordering::Release);
                        outcome
                    };
                    let max = shared.settings.max_reply_size;
                    if let Some(size) = outcome.reply_size().filter(|&size| size as u64 > max) {
                        // As Pyro5 does: the reply is not sent, the
                        // connection is closed.
                        return Err(format!(
                            "its reply is too large ({size} bytes, max_message_size {max})"
                        ));
                    }
                    match outcome {
                        Outcome::Reply(frame) => state.output = Some(Outgoing::frame(frame)),
                        Outcome::Parts(header, payload) => {
                            state.output = Some(Outgoing::parts(header, payload));
                        }
                        Outcome::Scattered(header, scatter, source) => {
                            state.output = Some(Outgoing {
                                reply: Reply::Scattered(header, scatter, source),
                                sent: 0,
                            });
                        }
                        Outcome::NoReply => {}
                        Outcome::Deferred(job) => deferred.push(job),
                    }
                }
                other => return Err(format!("unexpected message type {other} from a client")),
            },
        }
        Ok(())
    }
}

enum Received {
    /// Bytes came in (`drained`: all the socket had).
    Some { drained: bool },
    /// None are there yet.
    Nothing,
    /// The client closed the connection between messages.
    End,
}

/// Retries `io` when a signal interrupted it.
fn retry<T>(mut io: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match io() {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// A reply being sent.
struct Outgoing {
    reply: Reply,
    sent: usize,
}

enum Reply {
    /// A whole frame.
    Frame(Vec<u8>),
    /// A header and a payload held apart: the driver's encoded result,
    /// not copied into a frame (a byte string it lent, from its buffer).
    Parts([u8; HEADER_SIZE], Lent),
    /// A header and a payload in pieces, some borrowed from the driver's
    /// encoded result.
    Scattered([u8; HEADER_SIZE], Scatter, RVec<u8>),
}

impl Outgoing {
    fn frame(frame: Vec<u8>) -> Outgoing {
        Outgoing {
            reply: Reply::Frame(frame),
            sent: 0,
        }
    }

    fn parts(header: [u8; HEADER_SIZE], payload: Lent) -> Outgoing {
        Outgoing {
            reply: Reply::Parts(header, payload),
            sent: 0,
        }
    }

    /// The slices the reply is, in order.
    fn pieces(&self) -> Pieces<'_> {
        match &self.reply {
            Reply::Frame(frame) => Pieces::Two([frame, &[]]),
            Reply::Parts(header, Lent { head, tail }) if tail.is_empty() => {
                Pieces::Two([header, head])
            }
            Reply::Parts(header, Lent { head, tail }) => Pieces::Many(vec![header, head, tail]),
            Reply::Scattered(header, scatter, source) => {
                let mut slices = vec![&header[..]];
                slices.extend(scatter.slices(source));
                Pieces::Many(slices)
            }
        }
    }

    /// Writes as much as the socket takes, in vectored writes (usually
    /// one system call). Returns whether all of it is out.
    fn send(&mut self, stream: &Stream) -> Result<bool, String> {
        loop {
            let pieces = self.pieces();
            let slices = pieces.as_slice();
            let total: usize = slices.iter().map(|piece| piece.len()).sum();
            if self.sent == total {
                // TLS may hold some of it encrypted and not yet sent.
                return match stream.flush_now() {
                    Ok(all_out) => Ok(all_out),
                    Err(err) => Err(format!("cannot send a reply: {err}")),
                };
            }
            let written = match &pieces {
                Pieces::Two([first, second]) if self.sent >= first.len() => {
                    let rest = [IoSlice::new(&second[self.sent - first.len()..])];
                    retry(|| stream.send_now(&rest))
                }
                Pieces::Two([first, []]) => {
                    retry(|| stream.send_now(&[IoSlice::new(&first[self.sent..])]))
                }
                Pieces::Two([first, second]) => {
                    let both = [IoSlice::new(&first[self.sent..]), IoSlice::new(second)];
                    retry(|| stream.send_now(&both))
                }
                Pieces::Many(many) => {
                    let rest = unsent(many, self.sent);
                    retry(|| stream.send_now(&rest))
                }
            };
            match written {
                Ok(0) => return Err("cannot send a reply: the connection is closed".to_owned()),
                Ok(written) => self.sent += written,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) => return Err(format!("cannot send a reply: {err}")),
            }
        }
    }
}

/// A reply's slices: two (no allocation, the usual case), or any number.
enum Pieces<'a> {
    Two([&'a [u8]; 2]),
    Many(Vec<&'a [u8]>),
}

impl<'a> Pieces<'a> {
    fn as_slice(&self) -> &[&'a [u8]] {
        match self {
            Pieces::Two(two) => two,
            Pieces::Many(many) => many,
        }
    }
}

/// The slices still to send once `sent` bytes of `slices` are out (empty
/// ones left out), at most as many as one vectored write takes.
fn unsent<'a>(slices: &[&'a [u8]], mut sent: usize) -> Vec<IoSlice<'a>> {
    const MOST_AT_ONCE: usize = 64;
    let mut rest = Vec::with_capacity(slices.len().min(MOST_AT_ONCE));
    for slice in slices {
        if sent >= slice.len() {
            sent -= slice.len();
            continue;
        }
        rest.push(IoSlice::new(&slice[sent..]));
        sent = 0;
        if rest.len() == MOST_AT_ONCE {
            break;
        }
    }
    rest
}

/// Brings what `state`'s large incoming messages hold of the daemon's
/// message memory up to date: `Err` (closing the connection) when this
/// connection's share takes the daemon past `max_message_memory`.
fn account(shared: &Shared, state: &mut State) -> Result<(), String> {
    let large = |bytes: usize| {
        if bytes >= BUDGETED_FROM {
            bytes as u64
        } else {
            0
        }
    };
    let now = large(state.input.held_bytes())
        + state
            .ready
            .iter()
            .map(|message| large(message.payload.capacity()))
            .sum::<u64>();
    let before = std::mem::replace(&mut state.held, now);
    if now <= before {
        shared
            .message_memory
            .fetch_sub(before - now, Ordering::SeqCst);
        return Ok(());
    }
    let total = shared
        .message_memory
        .fetch_add(now - before, Ordering::SeqCst)
        + now
        - before;
    let max = shared.settings.max_message_memory;
    if total > max {
        return Err(format!(
            "no memory left for its message: large messages being read or answered would take \
             {total} bytes across connections (max_message_memory {max})"
        ));
    }
    Ok(())
}

fn serializer_for(message: &Message) -> Result<&'static dyn Serializer, String> {
    serializer::by_id(message.serializer_id)
        .ok_or_else(|| format!("unknown serializer id {}", message.serializer_id))
}

/// The CONNECTFAIL for a connection over the limit, in the client's
/// serializer (`None` if its serializer is unknown).
fn refusal(shared: &Shared, request: &Message) -> Option<Vec<u8>> {
    let max = shared.settings.max_connections;
    let serializer = serializer::by_id(request.serializer_id)?;
    let reason = format!("too many connections: this daemon serves at most {max} at once");
    let payload = serializer.serialize(&reason.into()).ok()?;
    let reply = Message::new(
        kind::CONNECTFAIL,
        request.serializer_id,
        0,
        request.seq,
        payload,
    );
    Some(reply.encode(false))
}

/// Answers the CONNECT: the handshake reply with the object's metadata, or
/// a CONNECTFAIL with the reason. Returns whether the connection goes on,
/// and the reply.
fn handshake(shared: &Shared, hello: &Message) -> Result<(bool, Vec<u8>), String> {
    let serializer = serializer_for(hello)?;
    let reply = serializer
        .deserialize(&hello.payload)
        .map_err(|err| err.to_string())
        .and_then(|request| {
            let object = request
                .get("object")
                .and_then(Value::as_str)
                .ok_or("the handshake names no object")?;
            let meta = if object == DAEMON_OBJECT {
                daemon_metadata(shared.settings.lockable)
            } else if let Some(native) = shared.objects.get(object) {
                native.metadata()
            } else {
                let service = shared.services.get(object).ok_or("unknown object")?;
                service.metadata(shared.added_methods())
            };
            Ok(Value::Map(vec![
                (Value::from("handshake"), Value::from("hello")),
                (Value::from("meta"), meta),
            ]))
        });
    let (message_kind, payload) = match reply {
        Ok(reply) => (kind::CONNECTOK, reply),
        Err(reason) => {
            tracing::info!("handshake refused: {reason}");
            (kind::CONNECTFAIL, Value::from(reason))
        }
    };
    let payload = serializer
        .serialize(&payload)
        .map_err(|err| err.to_string())?;
    let mut message = Message::new(message_kind, hello.serializer_id, 0, hello.seq, payload);
    if message_kind == kind::CONNECTOK {
        // Tells a pyrolab-host client it may switch to the native
        // serializer now, at no extra round trip.
        message
            .annotations
            .push((annotation::SERIALIZERS, serializer::SPOKEN.to_vec()));
        message.annotations.push((annotation::ARGS_MAP, Vec::new()));
    }
    message.correlation_id = hello.correlation_id;
    if hello.flags & flags::CORR_ID == 0 {
        message.correlation_id = [0; 16];
    }
    Ok((message_kind == kind::CONNECTOK, message.encode(false)))
}
