//! Readiness of many sockets, waited for by several threads at once
//! (epoll).
//!
//! Sockets are watched edge-triggered, for reading and writing at once,
//! and registered once: an event means something changed since the socket
//! was last looked at (bytes arrived, room to write appeared, the peer
//! left). The kernel wakes one waiting thread per event. Whoever is told
//! must read until the socket has no more (a read that returns less than
//! asked for says so) or it will not hear of those bytes again; the
//! connection's owner flag (see [`super::connection`]) makes sure only one
//! thread serves a connection at a time. Nothing is re-armed, so a call
//! costs no `epoll_ctl`; a socket is muted only while one worker waits on
//! it alone (see [`super::reactor`]), across as many calls as come.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::event::{EventfdFlags, Timespec, eventfd};

/// What a connected socket is watched for.
const SOCKET_EVENTS: EventFlags = EventFlags::IN
    .union(EventFlags::OUT)
    .union(EventFlags::RDHUP)
    .union(EventFlags::ET);

/// An epoll instance.
pub(super) struct Poller {
    epoll: OwnedFd,
}

impl Poller {
    pub(super) fn new() -> io::Result<Poller> {
        Ok(Poller {
            epoll: epoll::create(CreateFlags::CLOEXEC)?,
        })
    }

    /// Starts watching a connected socket, reported as `key`: for bytes
    /// to read, room to write, and the peer leaving.
    pub(super) fn add_socket(&self, source: impl AsFd, key: u64) -> io::Result<()> {
        epoll::add(&self.epoll, source, EventData::new_u64(key), SOCKET_EVENTS)?;
        Ok(())
    }

    /// Stops reporting a socket's bytes and room (not its errors) while a
    /// worker waits on it alone: each arrival would wake another worker
    /// for nothing.
    pub(super) fn mute(&self, source: impl AsFd, key: u64) -> io::Result<()> {
        epoll::modify(&self.epoll, source, EventData::new_u64(key), EventFlags::ET)?;
        Ok(())
    }

    /// Reports a muted socket's events again. What arrived meanwhile and
    /// is still unread is reported now, so nothing is missed.
    pub(super) fn unmute(&self, source: impl AsFd, key: u64) -> io::Result<()> {
        epoll::modify(&self.epoll, source, EventData::new_u64(key), SOCKET_EVENTS)?;
        Ok(())
    }

    /// Starts watching a listening socket, reported as `key`, for
    /// connections to accept.
    pub(super) fn add_listener(&self, source: impl AsFd, key: u64) -> io::Result<()> {
        let flags = EventFlags::IN | EventFlags::ET;
        epoll::add(&self.epoll, source, EventData::new_u64(key), flags)?;
        Ok(())
    }

    /// Stops watching `source` (closing it does too).
    pub(super) fn remove(&self, source: impl AsFd) {
        let _ = epoll::delete(&self.epoll, source);
    }

    /// Watches `waker` for as long as it is signalled: every thread that
    /// waits from then on is told (it is never re-armed).
    pub(super) fn add_waker(&self, waker: &Waker, key: u64) -> io::Result<()> {
        epoll::add(
            &self.epoll,
            &waker.fd,
            EventData::new_u64(key),
            EventFlags::IN,
        )?;
        Ok(())
    }

    /// Waits for one event, at most `timeout` (`None`: for as long as it
    /// takes): the socket's key and what happened to it, or `None` when the
    /// time is up (or a signal interrupted the wait). One event per wait, so that each of several
    /// ready connections wakes its own thread. A wait without a timeout is
    /// cheaper: the kernel sets no timer for it.
    pub(super) fn wait(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<Option<(u64, Happened)>> {
        let events = &mut events.0;
        events.clear();
        let timeout = timeout.map(|timeout| Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        });
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(events),
            timeout.as_ref(),
        ) {
            Ok(_) => Ok(events.first().map(|event| {
                let ended = EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR;
                let flags = event.flags;
                let happened = Happened {
                    peer_left: flags.intersects(ended),
                };
                (event.data.u64(), happened)
            })),
            Err(rustix::io::Errno::INTR) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

/// What an event says happened to a socket, beyond "look at it".
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Happened {
    /// The peer shut down its side (or the socket failed): the bytes
    /// before that end are still to be read, then the end itself.
    pub(super) peer_left: bool,
}

/// A waiting thread's room for the event it is told of (kept, so a wait
/// allocates nothing).
pub(super) struct Events(Vec<epoll::Event>);

impl Events {
    pub(super) fn new() -> Events {
        Events(Vec::with_capacity(1))
    }
}

/// Something to signal the poller's waiting threads with (an eventfd).
pub(super) struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub(super) fn new() -> io::Result<Waker> {
        let flags = EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK;
        Ok(Waker {
            fd: eventfd(0, flags)?,
        })
    }

    /// Signals: the waker reads as ready until [`Waker::clear`].
    pub(super) fn signal(&self) {
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    /// Takes the signal back.
    pub(super) fn clear(&self) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut count);
    }
}
