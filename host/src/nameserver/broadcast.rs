//! The broadcast responder: Pyro5 clients that do not know where the name
//! server is send the datagram `GET_NSURI` to the broadcast port, and the
//! name server answers with its URI.

use std::borrow::Cow;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const REQUEST: &[u8] = b"GET_NSURI";

/// A running responder; stops when dropped.
pub struct BroadcastResponder {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BroadcastResponder {
    /// Listens on UDP `host:port` (port 0: any free port) and answers each
    /// `GET_NSURI` with `uri`.
    pub fn start(host: &str, port: u16, uri: String) -> io::Result<BroadcastResponder> {
        let addresses: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        let socket = UdpSocket::bind(&addresses[..])?;
        socket.set_broadcast(true)?;
        // Wake up now and then to see whether it is time to stop.
        socket.set_read_timeout(Some(Duration::from_millis(250)))?;
        let address = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("ns-broadcast".to_owned())
            .spawn(move || answer(&socket, &uri, &stopping))?;
        Ok(BroadcastResponder {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// The URI to answer `peer` with: `uri`, unless the name server listens
/// on every address (`0.0.0.0`, `[::]`), which no client can connect to;
/// then, as Pyro5 does, the address of the interface that reaches the
/// peer (and `uri` as it is if none does).
fn uri_for(uri: &str, peer: SocketAddr) -> Cow<'_, str> {
    let any = match peer {
        SocketAddr::V4(_) => "@0.0.0.0:",
        SocketAddr::V6(_) => "@[::]:",
    };
    if !uri.contains(any) {
        return Cow::Borrowed(uri);
    }
    match interface_towards(peer) {
        Some(SocketAddr::V4(local)) => {
            Cow::Owned(uri.replacen(any, &format!("@{}:", local.ip()), 1))
        }
        Some(SocketAddr::V6(local)) => {
            Cow::Owned(uri.replacen(any, &format!("@[{}]:", local.ip()), 1))
        }
        None => Cow::Borrowed(uri),
    }
}

/// The local address the system would send to `peer` from: a UDP socket
/// connected to it (which sends nothing) says.
fn interface_towards(peer: SocketAddr) -> Option<SocketAddr> {
    let unspecified: SocketAddr = match peer {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let probe = UdpSocket::bind(unspecified).ok()?;
    probe.connect(peer).ok()?;
    probe.local_addr().ok()
}

fn answer(socket: &UdpSocket, uri: &str, stop: &AtomicBool) {
    let mut buffer = [0u8; 100];
    while !stop.load(Ordering::SeqCst) {
        match socket.recv_from(&mut buffer) {
            Ok((len, peer)) if &buffer[..len] == REQUEST => {
                tracing::debug!(%peer, "answering a name server broadcast");
                let answer = uri_for(uri, peer);
                if let Err(err) = socket.send_to(answer.as_bytes(), peer) {
                    tracing::debug!(%peer, "cannot answer a broadcast: {err}");
                }
            }
            // Anything else is not for us: ignore it, as Pyro5 does.
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(err) => {
                // On some systems an ICMP error from an earlier reply shows
                // up here; the socket itself is still fine.
                tracing::debug!("broadcast responder: {err}");
            }
        }
    }
}

impl Drop for BroadcastResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_get_nsuri_and_ignores_anything_else() {
        let uri = "PYRO:Pyro.NameServer@127.0.0.1:9090";
        let responder = BroadcastResponder::start("127.0.0.1", 0, uri.to_owned()).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.send_to(b"HELLO", responder.address()).unwrap();
        client.send_to(REQUEST, responder.address()).unwrap();
        let mut buffer = [0u8; 100];
        let (len, _) = client.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..len], uri.as_bytes());
    }

    /// A name server on every address is answered with the address that
    /// reaches the asker, as Pyro5's broadcast server does.
    #[test]
    fn a_name_server_on_every_address_is_answered_with_one_the_asker_reaches() {
        let uri = "PYRO:Pyro.NameServer@0.0.0.0:9090";
        let responder = BroadcastResponder::start("127.0.0.1", 0, uri.to_owned()).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.send_to(REQUEST, responder.address()).unwrap();
        let mut buffer = [0u8; 100];
        let (len, _) = client.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..len], b"PYRO:Pyro.NameServer@127.0.0.1:9090");
        let peer: SocketAddr = "127.0.0.1:5".parse().unwrap();
        assert_eq!(
            uri_for("PYRO:Pyro.NameServer@10.0.0.1:9090", peer),
            "PYRO:Pyro.NameServer@10.0.0.1:9090",
            "a bound address is kept"
        );
    }
}
