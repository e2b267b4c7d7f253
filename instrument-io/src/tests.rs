//! The transports and SCPI against a fake instrument, over a real TCP
//! socket and over real VXI-11 (this crate's server), with the faults a
//! real one has: silence, a late reply, garbage, an error queue, a
//! connection dropped in the middle of a block.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_plugin_api::ErrorKind;

use crate::vxi11::server::{Device, Server};
use crate::{Options, Scpi};

/// A fake SCPI instrument's behaviour: what it answers to each command.
#[derive(Default)]
struct Fake {
    errors: Vec<String>,
    output: Vec<u8>,
    /// Set by `:DROP?`: the socket server closes after sending `output`.
    drop_now: bool,
}

/// A waveform of `len` bytes that is easy to check.
fn waveform(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

impl Fake {
    fn command(&mut self, line: &str) {
        let reply: Option<Vec<u8>> = match line.trim() {
            "*IDN?" => Some(b"ACME Instruments,Model 1,SN123,1.0.2\n".to_vec()),
            "SYST:ERR?" => Some(if self.errors.is_empty() {
                b"+0,\"No error\"\n".to_vec()
            } else {
                let error = self.errors.remove(0);
                format!("{error}\n").into_bytes()
            }),
            ":VOLT?" => Some(b"+1.50000E+00\r\n".to_vec()),
            ":MUTE?" => None,
            ":GARBLE?" => Some(vec![0xff, 0xfe, b'\n']),
            ":NOTANUMBER?" => Some(b"ON\n".to_vec()),
            "*OPC?" => Some(b"1\n".to_vec()),
            ":BLOCK?" => {
                let data = waveform(1_000_003);
                let mut reply = format!("#7{:07}", data.len()).into_bytes();
                reply.extend_from_slice(&data);
                reply.push(b'\n');
                Some(reply)
            }
            ":INDEF?" => Some(b"#0abc\n".to_vec()),
            ":NOTBLOCK?" => Some(b"1,2,3\n".to_vec()),
            ":DROP?" => {
                self.drop_now = true;
                Some(b"#41000partial".to_vec())
            }
            ":VOLT 99" => {
                self.errors.push("-222,\"Data out of range\"".to_owned());
                None
            }
            ":VOLT 1" => None,
            other if other.starts_with(":LATE?") => {
                // Answered 0.5 s later (the socket server sleeps first).
                Some(b"late\n".to_vec())
            }
            _ => {
                self.errors.push("-113,\"Undefined header\"".to_owned());
                None
            }
        };
        if let Some(reply) = reply {
            self.output.extend_from_slice(&reply);
        }
    }
}

impl Device for Fake {
    fn message(&mut self, data: &[u8]) {
        for line in String::from_utf8_lossy(data).lines() {
            self.command(line);
        }
    }

    fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }
}

/// The fake on a TCP socket (`...::SOCKET`); one connection at a time,
/// each with a fresh error queue.
fn socket_instrument() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut writer = stream.try_clone().expect("clone");
            let mut fake = Fake::default();
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.starts_with(":LATE?") {
                    thread::sleep(Duration::from_millis(500));
                }
                if line.starts_with(":SLOWEND?") {
                    // A block whose terminator follows a moment later.
                    let _ = writer.write_all(b"#13abc");
                    thread::sleep(Duration::from_millis(50));
                    let _ = writer.write_all(b"\r\n");
                    continue;
                }
                fake.command(&line);
                if writer.write_all(&std::mem::take(&mut fake.output)).is_err() {
                    break;
                }
                if fake.drop_now {
                    break;
                }
            }
        }
    });
    port
}

fn options() -> Options {
    Options {
        timeout: Duration::from_millis(300),
        ..Options::default()
    }
}

fn socket_scpi() -> Scpi {
    let port = socket_instrument();
    Scpi::open(&format!("TCPIP0::127.0.0.1::{port}::SOCKET"), &options()).expect("open")
}

fn vxi11_scpi() -> (Scpi, Server) {
    let device: Arc<Mutex<dyn Device>> = Arc::new(Mutex::new(Fake::default()));
    let server = Server::start("127.0.0.1", device).expect("serve VXI-11");
    let options = Options {
        portmapper_port: server.portmapper_port(),
        ..options()
    };
    let scpi = Scpi::open("TCPIP0::127.0.0.1::inst0::INSTR", &options).expect("open");
    (scpi, server)
}

/// What every transport must do alike.
fn the_main_operations(scpi: &mut Scpi) {
    let identity = scpi.identify().expect("*IDN?");
    assert_eq!(identity.manufacturer, "ACME Instruments");
    assert_eq!(identity.model, "Model 1");
    assert_eq!(identity.firmware, "1.0.2");
    let volts: f64 = scpi.query_parsed(":VOLT?").expect("a number");
    assert_eq!(volts, 1.5);
    let block = scpi.query_block(":BLOCK?").expect("a definite block");
    assert_eq!(block, waveform(1_000_003));
    assert_eq!(
        scpi.query_block(":INDEF?").expect("an indefinite block"),
        b"abc"
    );
    scpi.write_checked(":VOLT 1").expect("accepted");
    scpi.wait_complete(Duration::from_secs(1)).expect("*OPC?");
}

fn the_faults(scpi: &mut Scpi) {
    // The instrument's own message.
    let refused = scpi.write_checked(":VOLT 99").expect_err("out of range");
    assert_eq!(refused.kind(), ErrorKind::RuntimeError);
    assert!(
        refused.message().contains("-222,\"Data out of range\""),
        "{refused}"
    );
    // A mute instrument.
    let started = Instant::now();
    let mute = scpi.query(":MUTE?").expect_err("no answer");
    assert_eq!(mute.kind(), ErrorKind::TimeoutError, "{mute}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Garbage.
    let garbled = scpi.query(":GARBLE?").expect_err("not text");
    assert_eq!(garbled.kind(), ErrorKind::ConnectionError, "{garbled}");
    let not_a_number = scpi
        .query_parsed::<f64>(":NOTANUMBER?")
        .expect_err("not a number");
    assert_eq!(not_a_number.kind(), ErrorKind::ConnectionError);
    assert!(not_a_number.message().contains("\"ON\""), "{not_a_number}");
    let not_a_block = scpi.query_block(":NOTBLOCK?").expect_err("not a block");
    assert_eq!(not_a_block.kind(), ErrorKind::ConnectionError);
    // And it goes on.
    assert_eq!(scpi.identify().expect("still there").model, "Model 1");
}

#[test]
fn scpi_over_a_socket_does_the_main_operations() {
    the_main_operations(&mut socket_scpi());
}

#[test]
fn scpi_over_a_socket_reports_each_fault_as_its_kind_and_goes_on() {
    the_faults(&mut socket_scpi());
}

#[test]
fn scpi_over_vxi11_does_the_main_operations() {
    let (mut scpi, _server) = vxi11_scpi();
    the_main_operations(&mut scpi);
}

#[test]
fn scpi_over_vxi11_reports_each_fault_as_its_kind_and_goes_on() {
    let (mut scpi, _server) = vxi11_scpi();
    the_faults(&mut scpi);
}

#[test]
fn a_late_reply_is_not_taken_for_the_next_one() {
    let mut scpi = socket_scpi();
    let late = scpi.query(":LATE?").expect_err("answers after the timeout");
    assert_eq!(late.kind(), ErrorKind::TimeoutError);
    thread::sleep(Duration::from_millis(400));
    assert_eq!(scpi.identify().expect("its own reply").model, "Model 1");
}

#[test]
fn the_end_of_a_block_coming_late_is_not_taken_for_the_next_reply() {
    let mut scpi = socket_scpi();
    assert_eq!(scpi.query_block(":SLOWEND?").expect("block"), b"abc");
    assert_eq!(scpi.identify().expect("its own reply").model, "Model 1");
    assert_eq!(scpi.query_block(":SLOWEND?").expect("block"), b"abc");
    assert_eq!(scpi.query_block(":SLOWEND?").expect("block"), b"abc");
}

#[test]
fn a_connection_dropped_mid_block_is_a_connection_error_and_the_next_call_connects_again() {
    let mut scpi = socket_scpi();
    let dropped = scpi.query_block(":DROP?").expect_err("cut short");
    assert_eq!(dropped.kind(), ErrorKind::ConnectionError, "{dropped}");
    assert!(
        dropped.message().contains("closed the connection"),
        "{dropped}"
    );
    assert_eq!(scpi.identify().expect("connected again").model, "Model 1");
}

#[test]
fn nothing_listening_is_a_connection_error_naming_the_resource() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let err = Scpi::open(&format!("TCPIP0::127.0.0.1::{port}::SOCKET"), &options())
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::ConnectionError);
    assert!(
        err.message()
            .contains(&format!("TCPIP0::127.0.0.1::{port}::SOCKET")),
        "{err}"
    );
}
