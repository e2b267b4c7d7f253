//! The driver against the simulated laser, in memory: the simulator's
//! state machine behind an instrument-io `Transport`.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use instrument_io::{Resource, Transport};
use pyrolab_plugin_api::{DriverError, ErrorKind};
use simulators::ppcl55x::{self as sim, Faults, Request, Timing};
use simulators::pty::SerialDevice;

use super::*;

/// The simulated laser as a transport: what the driver writes goes to
/// the state machine, its replies wait to be read.
struct Simulated {
    laser: Arc<Mutex<sim::Laser>>,
    replies: VecDeque<u8>,
    resource: Resource,
    timeout: Duration,
    /// Flip a bit in the next request on its way (line noise).
    corrupt_next: Arc<Mutex<bool>>,
}

impl Transport for Simulated {
    fn write(&mut self, data: &[u8]) -> Result<(), DriverError> {
        let mut data = data.to_vec();
        let mut corrupt = self.corrupt_next.lock().unwrap();
        if std::mem::take(&mut *corrupt) {
            data[3] ^= 0x01;
        }
        let replies = self.laser.lock().unwrap().receive(&data, Instant::now());
        self.replies.extend(replies);
        Ok(())
    }

    fn read_until(&mut self, _: u8, _: usize) -> Result<Vec<u8>, DriverError> {
        unreachable!("ITLA frames have no terminator")
    }

    fn read_exact(&mut self, len: usize) -> Result<Vec<u8>, DriverError> {
        if self.replies.len() < len {
            return Err(DriverError::timeout("the simulated laser sent nothing"));
        }
        Ok(self.replies.drain(..len).collect())
    }

    fn clear(&mut self) -> Result<(), DriverError> {
        self.replies.clear();
        Ok(())
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn resource(&self) -> &Resource {
        &self.resource
    }
}

struct Bench {
    laser: Laser,
    simulated: Arc<Mutex<sim::Laser>>,
    faults: Arc<Faults>,
    corrupt_next: Arc<Mutex<bool>>,
}

impl Bench {
    fn requests(&self) -> Vec<Request> {
        self.simulated.lock().unwrap().requests().to_vec()
    }

    fn wrote(&self, register: u8, data: u16) -> bool {
        self.requests().contains(&Request {
            write: true,
            register,
            data,
        })
    }
}

fn quick() -> Timing {
    Timing {
        enable: Duration::from_millis(60),
        tune: Duration::from_millis(40),
        mode: Duration::from_millis(30),
    }
}

fn bench_with(
    model: Model,
    simulated: sim::Model,
    timing: Timing,
    parameters: Parameters,
) -> Bench {
    let faults = Arc::new(Faults::default());
    let simulated = Arc::new(Mutex::new(sim::Laser::new(
        simulated,
        timing,
        Arc::clone(&faults),
    )));
    let corrupt_next = Arc::new(Mutex::new(false));
    let transport = Simulated {
        laser: Arc::clone(&simulated),
        replies: VecDeque::new(),
        resource: Resource::Serial {
            port: "/dev/ttySIM".into(),
        },
        timeout: Duration::from_millis(500),
        corrupt_next: Arc::clone(&corrupt_next),
    };
    let itla = Itla::over(Box::new(transport), "/dev/ttySIM".into(), 9600);
    Bench {
        laser: Laser::with_link(model, parameters, itla).unwrap(),
        simulated,
        faults,
        corrupt_next,
    }
}

fn bench() -> Bench {
    bench_with(PPCL550, sim::Model::Ppcl550, quick(), Parameters::default())
}

#[track_caller]
fn fails(result: Result<impl std::fmt::Debug>, kind: ErrorKind, text: &str) -> String {
    let err = result.expect_err("an error");
    assert_eq!(err.kind(), kind, "{err}");
    let message = format!("{err} {:?}", err.context_lines());
    assert!(message.contains(text), "{message:?} lacks {text:?}");
    message
}

#[test]
fn it_sets_power_turns_on_and_tunes_to_a_megahertz() {
    let mut b = bench();
    assert!(!b.laser.is_on().unwrap());
    // Off: the output reads dark.
    assert_eq!(b.laser.power_dbm(None).unwrap(), Some(-40.0));
    assert_eq!(b.laser.power_mw(None).unwrap(), Some(0.0));
    assert_eq!(b.laser.power_dbm(Some(12.0)).unwrap(), None);
    assert!(b.wrote(register::PWR, 1200));
    let started = Instant::now();
    b.laser.on().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "waited for the lock"
    );
    assert!(b.laser.is_on().unwrap());
    assert_eq!(b.laser.power_dbm(None).unwrap(), Some(12.0));
    assert_eq!(b.laser.power_mw(None).unwrap(), Some(15.85));
    b.laser.power_mw(Some(10.0)).unwrap();
    assert_eq!(b.laser.power_dbm(None).unwrap(), Some(10.0));

    // Tuning while on: off, FCF1..3, on again.
    b.laser.frequency(Some(193_414.489)).unwrap();
    assert!(b.wrote(register::FCF1, 193));
    assert!(b.wrote(register::FCF2, 4144));
    assert!(b.wrote(register::FCF3, 89));
    assert!(b.wrote(register::RES_ENA, 0));
    assert!(b.laser.is_on().unwrap());
    assert_eq!(b.laser.frequency(None).unwrap(), Some(193_414.489));
    b.laser.wavelength(Some(1550.0)).unwrap();
    assert_eq!(b.laser.wavelength(None).unwrap(), Some(1550.0));
    b.laser.off().unwrap();
    assert!(!b.laser.is_on().unwrap());
    // While off, tuning leaves it off.
    b.laser.wavelength(Some(1560.0)).unwrap();
    assert!(!b.laser.is_on().unwrap());
    assert_eq!(b.laser.wavelength(None).unwrap(), Some(1560.0));
}

#[test]
fn values_outside_the_class_range_are_refused_before_sending() {
    let mut b = bench();
    let sent = b.requests().len();
    fails(
        b.laser.wavelength(Some(1600.0)),
        ErrorKind::ValueError,
        "between 1515 and 1570 nm",
    );
    fails(
        b.laser.power_dbm(Some(14.0)),
        ErrorKind::ValueError,
        "between 6 and 13.5 dBm",
    );
    fails(b.laser.power_mw(Some(1.0)), ErrorKind::ValueError, "mW");
    fails(b.laser.frequency(Some(193.4)), ErrorKind::ValueError, "GHz");
    fails(b.laser.set_mode(3), ErrorKind::ValueError, "whisper");
    assert_eq!(b.requests().len(), sent);
    // The PPCL551's range is the L band.
    let mut l = bench_with(PPCL551, sim::Model::Ppcl551, quick(), Parameters::default());
    l.laser.wavelength(Some(1600.0)).unwrap();
    assert_eq!(l.laser.wavelength(None).unwrap(), Some(1600.0));
    fails(
        l.laser.wavelength(Some(1550.0)),
        ErrorKind::ValueError,
        "between 1569 and 1625 nm",
    );
}

#[test]
fn the_laser_s_own_refusal_carries_its_error_code() {
    let mut b = bench();
    // Within PyroLab's 1515-1570 nm, beyond this laser's 191.5-196.25 THz.
    fails(
        b.laser.wavelength(Some(1516.0)),
        ErrorKind::RuntimeError,
        "the laser refused writing 197 to FCF1 (0x35): RVE (register value range error)",
    );
    fails(
        b.laser.wavelength(Some(1566.0)),
        ErrorKind::RuntimeError,
        "FCF2 (0x36): RVE (register value range error); it stays at 193400 GHz",
    );
    assert_eq!(b.laser.frequency(None).unwrap(), Some(193_400.0));
    // Refused while on: back where it was, and on.
    b.laser.on().unwrap();
    fails(
        b.laser.wavelength(Some(1516.0)),
        ErrorKind::RuntimeError,
        "it stays at 193400 GHz",
    );
    assert!(b.laser.is_on().unwrap());
    b.laser.off().unwrap();
    fails(
        b.laser.set_channel(0),
        ErrorKind::RuntimeError,
        "Channel (0x30): RVE",
    );
    assert_eq!(b.laser.set_channel(1).unwrap(), 1);
    b.laser.on().unwrap();
    assert_eq!(b.laser.set_mode(2).unwrap(), 2);
    assert_eq!(b.laser.mode().unwrap(), 2);
}

#[test]
fn a_pending_operation_that_outlasts_settle_timeout_is_a_timeout() {
    let parameters = Parameters {
        settle_timeout: 0.05,
        ..Parameters::default()
    };
    let slow = Timing {
        enable: Duration::from_secs(5),
        ..quick()
    };
    let mut b = bench_with(PPCL550, sim::Model::Ppcl550, slow, parameters);
    fails(
        b.laser.on(),
        ErrorKind::TimeoutError,
        "still turning on after",
    );
    // Meanwhile, writes are ignored: CIP.
    fails(
        b.laser.power_dbm(Some(8.0)),
        ErrorKind::RuntimeError,
        "CIP (command ignored while an operation is pending)",
    );
    // Turning off aborts.
    b.laser.off().unwrap();
    assert!(!b.laser.is_on().unwrap());
}

#[test]
fn it_identifies_the_laser_from_its_strings() {
    let mut b = bench();
    let identity = b.laser.identify().unwrap();
    assert_eq!(identity.manufacturer, "Pure Photonics");
    assert_eq!(identity.model, "PPCL550");
    assert_eq!(identity.device_type, "CW ITLA");
    assert_eq!(identity.serial_number, "SIM5500001");
    let limits = b.laser.laser_limits().unwrap();
    assert_eq!(limits.min_frequency, 191_500.0);
    assert_eq!(limits.max_frequency, 196_250.0);
    assert_eq!(limits.max_power_dbm, 13.5);
}

#[test]
fn mute_garbled_and_corrupted_lines() {
    let mut b = bench();
    b.faults.mute.store(true, Ordering::SeqCst);
    fails(
        b.laser.power_dbm(None),
        ErrorKind::TimeoutError,
        "did not answer reading OOP (0x42)",
    );
    b.faults.mute.store(false, Ordering::SeqCst);
    b.faults.garble.store(true, Ordering::SeqCst);
    fails(
        b.laser.mode(),
        ErrorKind::ConnectionError,
        "garbled reply to reading Mode (0x90)",
    );
    b.faults.garble.store(false, Ordering::SeqCst);
    assert_eq!(b.laser.mode().unwrap(), 0);
    // A request corrupted on the way: the laser says CE, it is sent again.
    *b.corrupt_next.lock().unwrap() = true;
    b.laser.power_dbm(Some(9.0)).unwrap();
    let writes = b
        .requests()
        .iter()
        .filter(|r| r.write && r.register == register::PWR)
        .count();
    assert_eq!(writes, 1, "executed once");
    assert!(b.wrote(register::PWR, 900));
}

#[test]
fn it_needs_a_connection_and_sane_parameters() {
    let mut laser = Laser::new(PPCL550, Parameters::default()).unwrap();
    fails(laser.on(), ErrorKind::ConnectionError, "call connect()");
    fails(laser.connect(None, None), ErrorKind::ValueError, "no port");
    fails(
        laser.connect(Some("/dev/nonexistent-ppcl".into()), None),
        ErrorKind::ConnectionError,
        "/dev/nonexistent-ppcl",
    );
    fails(
        laser.connect(Some("/dev/x".into()), Some(1234)),
        ErrorKind::ValueError,
        "baudrate",
    );
    let bad = Parameters {
        timeout: 0.0,
        ..Parameters::default()
    };
    fails(
        Laser::new(PPCL550, bad).map(drop),
        ErrorKind::ValueError,
        "timeout",
    );
}

#[test]
fn pyrolab_s_ranges_are_its_class_constants() {
    assert!((PPCL550.min_frequency() - 190_950.6).abs() < 0.1);
    assert!((PPCL550.max_frequency() - 197_882.8).abs() < 0.1);
    assert!((PPCL551.max_power_mw() - 22.387).abs() < 1e-3);
}
