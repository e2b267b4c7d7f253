//! A simulated Pure Photonics PPCL550 (C band) or PPCL551 (L band) tunable
//! laser, speaking the OIF Integrable Tunable Laser Assembly MSA
//! (OIF-ITLA-MSA-01.3) register protocol on a serial port, as the real one
//! does over its USB serial adapter.
//!
//! The protocol, as the simulator keeps it:
//!
//! - **Frames** are 4 bytes both ways: a BIP-4 checksum in the top nibble of
//!   byte 0, flags in its low nibble, the register number in byte 1, 16 bits
//!   of data (big-endian) in bytes 2 and 3. A request's flags are LstRsp
//!   (bit 3: "send your last reply again") and read/write (bit 0); a reply's
//!   are CE (bit 3: "your last request failed its checksum") and a 2-bit
//!   status: OK, XE (execution error), AEA (a string follows) or CP
//!   (command pending).
//! - **A request with a bad checksum** is not executed: the reply is an
//!   unprocessed frame with CE set. A partial frame is dropped once the line
//!   has been idle for [`INTER_BYTE_TIMEOUT`], so the laser re-synchronises
//!   after noise, as a real module's receiver does.
//! - **Errors**: a refused command is answered XE, and the reason is in the
//!   error field (bits 3:0) of the NOP register (0x00), which holds the
//!   outcome of the last command other than a NOP read: RNI (register not
//!   implemented), RNW (not writable), RVE (value out of range), CIP
//!   (ignored while an operation is pending), CIE (ignored while the output
//!   is on), ERE (extended address range), IVC (invalid configuration).
//! - **Pending operations**: enabling the output (ResEna 0x32, SENA bit),
//!   changing channel while it is on, and changing the Pure Photonics mode
//!   (0x90) while it is on are answered CP and take [`Timing`]'s time,
//!   during which NOP's pending flags (bits 15:8) are set and MRDY (bit 4)
//!   is clear; every write meanwhile is refused with CIP, except turning
//!   the output off, which aborts.
//! - **Strings** (DevTyp 0x01, MFGR 0x02, Model 0x03, SerNo 0x04, MFGDate
//!   0x05, Release 0x06, RelBack 0x07) are read by automatic extended
//!   addressing: the read is answered AEA with the string's length, and each
//!   following read of AEA-EAR (0x0B) returns the next two characters.
//! - **Tuning**: the first channel's frequency is FCF1 (0x35, THz) + FCF2
//!   (0x36, 0.1 GHz) + FCF3 (0x67, MHz), channel n (0x30) sits `n - 1`
//!   grid spacings (0x34, 0.1 GHz) above it, and LF1/LF2/LF3 (0x40, 0x41,
//!   0x68) read where the laser is. FCF writes are refused (CIE) while the
//!   output is on, so a host turns it off, sets the frequency and turns it
//!   on again (PyroLab's driver does). Each FCF register is checked for its
//!   own range, and FCF2 and FCF3 also for the frequency they make (FCF2
//!   with the MHz part not counted, so writing FCF1, FCF2, FCF3 in that
//!   order never trips over the previous value) against the laser's range
//!   (LFL1/LFL2 0x52/0x53, LFH1/LFH2 0x54/0x55).
//! - **Power**: PWR (0x31) is the set point in dBm × 100, within OPSL/OPSH
//!   (0x50/0x51); OOP (0x42) reads it while the output is on and settled,
//!   and [`DARK_POWER`] otherwise.
//!
//! [`Simulator`] serves it on a pseudo-terminal ([`crate::pty`]); a test can
//! make it misbehave ([`Faults`]) and pull its cable ([`Simulator::unplug`]).

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::pty::{Plug, PtyPort, SerialDevice, TcpPort};

/// Register numbers (the MSA's, and Pure Photonics' mode register).
pub mod register {
    pub const NOP: u8 = 0x00;
    pub const DEV_TYP: u8 = 0x01;
    pub const MFGR: u8 = 0x02;
    pub const MODEL: u8 = 0x03;
    pub const SER_NO: u8 = 0x04;
    pub const MFG_DATE: u8 = 0x05;
    pub const RELEASE: u8 = 0x06;
    pub const REL_BACK: u8 = 0x07;
    pub const GEN_CFG: u8 = 0x08;
    pub const AEA_EAC: u8 = 0x09;
    pub const AEA_EA: u8 = 0x0A;
    pub const AEA_EAR: u8 = 0x0B;
    pub const IO_CAP: u8 = 0x0D;
    pub const STATUS_F: u8 = 0x20;
    pub const STATUS_W: u8 = 0x21;
    pub const CHANNEL: u8 = 0x30;
    pub const PWR: u8 = 0x31;
    pub const RES_ENA: u8 = 0x32;
    pub const GRID: u8 = 0x34;
    pub const FCF1: u8 = 0x35;
    pub const FCF2: u8 = 0x36;
    pub const LF1: u8 = 0x40;
    pub const LF2: u8 = 0x41;
    pub const OOP: u8 = 0x42;
    pub const CTEMP: u8 = 0x43;
    pub const OPSL: u8 = 0x50;
    pub const OPSH: u8 = 0x51;
    pub const LFL1: u8 = 0x52;
    pub const LFL2: u8 = 0x53;
    pub const LFH1: u8 = 0x54;
    pub const LFH2: u8 = 0x55;
    pub const LGRID: u8 = 0x56;
    pub const FCF3: u8 = 0x67;
    pub const LF3: u8 = 0x68;
    /// Pure Photonics: 0 standard (dither), 1 no dither, 2 whisper.
    pub const MODE: u8 = 0x90;
}

/// The NOP register's error field codes (the MSA's).
pub mod error {
    pub const OK: u8 = 0x00;
    pub const RNI: u8 = 0x01;
    pub const RNW: u8 = 0x02;
    pub const RVE: u8 = 0x03;
    pub const CIP: u8 = 0x04;
    pub const ERE: u8 = 0x06;
    pub const CIE: u8 = 0x09;
    pub const IVC: u8 = 0x0A;
}

/// Reply status (bits 25:24 of a reply).
pub mod status {
    pub const OK: u8 = 0;
    pub const XE: u8 = 1;
    pub const AEA: u8 = 2;
    pub const CP: u8 = 3;
}

/// Request flag: send the last reply again.
pub const LST_RSP: u8 = 0x08;
/// Reply flag: the last request failed its checksum.
pub const CE: u8 = 0x08;
/// ResEna's software enable bit (the optical output).
pub const SENA: u16 = 0x0008;
/// ResEna's soft reset and module reset bits.
const RESET_BITS: u16 = 0x0003;
/// NOP: the module is ready (no operation pending).
pub const MRDY: u16 = 0x0010;
/// NOP pending flag: the laser is turning on or tuning.
pub const PENDING_TUNE: u16 = 0x0100;
/// NOP pending flag: the laser is changing its mode.
pub const PENDING_MODE: u16 = 0x0200;
/// OOP while the output is off or not yet locked, in dBm × 100.
pub const DARK_POWER: i16 = -4000;
/// How long the line may be idle in the middle of a frame before the laser
/// drops the partial frame.
pub const INTER_BYTE_TIMEOUT: Duration = Duration::from_millis(50);

/// The BIP-4 checksum of a frame: the XOR of its bytes with the checksum
/// nibble cleared, folded to four bits.
pub fn checksum(frame: [u8; 4]) -> u8 {
    let bip8 = (frame[0] & 0x0F) ^ frame[1] ^ frame[2] ^ frame[3];
    (bip8 >> 4) ^ (bip8 & 0x0F)
}

/// `flags` (the low nibble of byte 0), `register` and `data` as a frame
/// with its checksum.
pub fn frame(flags: u8, register: u8, data: u16) -> [u8; 4] {
    let [high, low] = data.to_be_bytes();
    let mut frame = [flags & 0x0F, register, high, low];
    frame[0] |= checksum(frame) << 4;
    frame
}

/// A host's request: a read (`write` false) or a write of `data`.
pub fn request(write: bool, register: u8, data: u16) -> [u8; 4] {
    frame(u8::from(write), register, data)
}

/// Which laser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// The C-band PPCL550.
    Ppcl550,
    /// The L-band PPCL551.
    Ppcl551,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::Ppcl550 => "PPCL550",
            Model::Ppcl551 => "PPCL551",
        }
    }

    /// The tuning range, in MHz.
    pub fn range_mhz(self) -> (u64, u64) {
        match self {
            Model::Ppcl550 => (191_500_000, 196_250_000),
            Model::Ppcl551 => (184_500_000, 191_000_000),
        }
    }

    /// The first channel's frequency at power-up, in MHz (1550.12 nm for
    /// the PPCL550, 1600.06 nm for the PPCL551).
    fn default_frequency_mhz(self) -> u64 {
        match self {
            Model::Ppcl550 => 193_400_000,
            Model::Ppcl551 => 187_360_000,
        }
    }
}

/// The output power range, in dBm × 100 (OPSL, OPSH).
pub const POWER_RANGE: (i16, i16) = (600, 1350);

/// How long the pending operations take.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Enabling the output until the laser is locked at its frequency.
    pub enable: Duration,
    /// Moving to another channel while on.
    pub tune: Duration,
    /// Changing mode (dither, no dither, whisper) while on.
    pub mode: Duration,
}

impl Default for Timing {
    /// Shorter than a real laser's (tens of seconds to lock from off), so
    /// tests stay quick; long enough that a host must poll NOP.
    fn default() -> Self {
        Timing {
            enable: Duration::from_millis(600),
            tune: Duration::from_millis(300),
            mode: Duration::from_millis(150),
        }
    }
}

/// How the simulator misbehaves, set from outside while it runs.
#[derive(Default)]
pub struct Faults {
    /// It reads requests and neither executes nor answers them.
    pub mute: AtomicBool,
    /// It answers every request with a frame whose checksum is wrong.
    pub garble: AtomicBool,
    /// Halfway through the next string (AEA) transfer it stops answering,
    /// as a laser whose cable is being pulled: a test then unplugs it.
    pub stall_aea: AtomicBool,
}

/// A request as the laser received it (checksum good).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub write: bool,
    pub register: u8,
    pub data: u16,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Operation {
    Enable,
    Tune,
    Mode,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    operation: Operation,
    until: Instant,
}

/// A string being read through AEA-EAR.
struct Transfer {
    bytes: Vec<u8>,
    at: usize,
}

/// What a command did: the reply's status and data, or the error code
/// for the NOP register.
enum Outcome {
    Done(u16),
    String(u16),
    Started(u16),
    Refused(u8),
}

/// The laser's state machine, fed the bytes a host sends.
pub struct Laser {
    model: Model,
    timing: Timing,
    faults: Arc<Faults>,
    partial: Vec<u8>,
    last_byte: Option<Instant>,
    last_reply: [u8; 4],
    /// The NOP error field: the outcome of the last command but NOP reads.
    error: u8,
    enabled: bool,
    pending: Option<Pending>,
    channel: u16,
    grid: i16,
    fcf: [u16; 3],
    power: i16,
    mode: u16,
    /// Where the laser is locked while on, in MHz.
    locked_mhz: u64,
    gen_cfg: u16,
    io_cap: u16,
    transfer: Option<Transfer>,
    /// It stopped answering mid-transfer ([`Faults::stall_aea`]).
    stalled: bool,
    requests: Vec<Request>,
}

impl Laser {
    /// A laser as at power-up: output off, channel 1, 10 dBm set.
    pub fn new(model: Model, timing: Timing, faults: Arc<Faults>) -> Laser {
        let mut laser = Laser {
            model,
            timing,
            faults,
            partial: Vec::new(),
            last_byte: None,
            last_reply: frame(status::OK, register::NOP, 0),
            error: error::OK,
            enabled: false,
            pending: None,
            channel: 1,
            grid: 0,
            fcf: [0; 3],
            power: 1000,
            mode: 0,
            locked_mhz: 0,
            gen_cfg: 0,
            io_cap: 0,
            transfer: None,
            stalled: false,
            requests: Vec::new(),
        };
        laser.reset();
        laser
    }

    /// Back to the power-up settings (ResEna's soft or module reset).
    fn reset(&mut self) {
        let mhz = self.model.default_frequency_mhz();
        self.enabled = false;
        self.pending = None;
        self.channel = 1;
        self.grid = 0;
        self.fcf = split_mhz(mhz);
        self.power = 1000;
        self.mode = 0;
        self.locked_mhz = 0;
        self.transfer = None;
    }

    /// Whether an operation is pending at `now`.
    pub fn pending(&mut self, now: Instant) -> bool {
        self.settle(now);
        self.pending.is_some()
    }

    /// Whether the output is on (enabled, pending or not).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether it stopped answering mid-transfer ([`Faults::stall_aea`]).
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// The requests received so far, oldest first.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// The first channel's frequency (FCF1..3), in MHz.
    fn first_channel_mhz(&self) -> u64 {
        join_mhz(self.fcf)
    }

    /// Channel `channel`'s frequency, in MHz, if it is a real frequency.
    fn channel_mhz(&self, channel: u16) -> Option<u64> {
        let offset = i64::from(channel) - 1;
        let mhz = self.first_channel_mhz() as i64 + offset * i64::from(self.grid) * 100;
        u64::try_from(mhz).ok()
    }

    fn in_range(&self, mhz: u64) -> bool {
        let (low, high) = self.model.range_mhz();
        (low..=high).contains(&mhz)
    }

    /// Ends a pending operation whose time is up.
    fn settle(&mut self, now: Instant) {
        let Some(pending) = self.pending else {
            return;
        };
        if now < pending.until {
            return;
        }
        self.pending = None;
        if matches!(pending.operation, Operation::Enable | Operation::Tune) {
            self.locked_mhz = self.channel_mhz(self.channel).unwrap_or(0);
        }
    }

    fn start(&mut self, operation: Operation, now: Instant) {
        let time = match operation {
            Operation::Enable => self.timing.enable,
            Operation::Tune => self.timing.tune,
            Operation::Mode => self.timing.mode,
        };
        self.pending = Some(Pending {
            operation,
            until: now + time,
        });
    }

    /// The NOP register: pending flags, MRDY, the error field.
    fn nop(&self) -> u16 {
        let flags = match self.pending.map(|p| p.operation) {
            Some(Operation::Enable | Operation::Tune) => PENDING_TUNE,
            Some(Operation::Mode) => PENDING_MODE,
            None => MRDY,
        };
        flags | u16::from(self.error)
    }

    /// Where the laser is (LF1..3), in MHz: the channel it is set to, or
    /// while it moves to another channel, the one it left.
    fn frequency_mhz(&self) -> u64 {
        match self.pending.map(|p| p.operation) {
            Some(Operation::Tune) => self.locked_mhz,
            _ => self.channel_mhz(self.channel).unwrap_or(0),
        }
    }

    fn output_power(&self) -> i16 {
        let locked = self.enabled
            && !matches!(
                self.pending.map(|p| p.operation),
                Some(Operation::Enable | Operation::Tune)
            );
        if locked { self.power } else { DARK_POWER }
    }

    fn string(&self, register: u8) -> Option<String> {
        let text = match register {
            register::DEV_TYP => "CW ITLA".to_owned(),
            register::MFGR => "Pure Photonics".to_owned(),
            register::MODEL => self.model.name().to_owned(),
            register::SER_NO => format!("SIM{}0001", &self.model.name()[4..]),
            register::MFG_DATE => "2021-06-01".to_owned(),
            register::RELEASE => "5.2.1 (simulated)".to_owned(),
            register::REL_BACK => "5.0.0".to_owned(),
            _ => return None,
        };
        Some(text)
    }

    fn read(&mut self, register: u8) -> Outcome {
        if let Some(text) = self.string(register) {
            let mut bytes = text.into_bytes();
            bytes.push(0); // NUL-terminated, padded to whole words
            if bytes.len() % 2 == 1 {
                bytes.push(0);
            }
            let len = bytes.len() as u16;
            self.transfer = Some(Transfer { bytes, at: 0 });
            return Outcome::String(len);
        }
        let [lf1, lf2, lf3] = split_mhz(self.frequency_mhz());
        let (low, high) = self.model.range_mhz();
        let [lfl1, lfl2, _] = split_mhz(low);
        let [lfh1, lfh2, _] = split_mhz(high);
        Outcome::Done(match register {
            register::NOP => self.nop(),
            register::GEN_CFG => self.gen_cfg,
            register::AEA_EAC => 0,
            register::AEA_EA => self.transfer.as_ref().map_or(0, |t| t.at as u16),
            register::AEA_EAR => return self.next_word(),
            register::IO_CAP => self.io_cap,
            register::STATUS_F | register::STATUS_W => 0,
            register::CHANNEL => self.channel,
            register::PWR => self.power as u16,
            register::RES_ENA => {
                if self.enabled {
                    SENA
                } else {
                    0
                }
            }
            register::GRID => self.grid as u16,
            register::FCF1 => self.fcf[0],
            register::FCF2 => self.fcf[1],
            register::FCF3 => self.fcf[2],
            register::LF1 => lf1,
            register::LF2 => lf2,
            register::LF3 => lf3,
            register::OOP => self.output_power() as u16,
            register::CTEMP => 3500,
            register::OPSL => POWER_RANGE.0 as u16,
            register::OPSH => POWER_RANGE.1 as u16,
            register::LFL1 => lfl1,
            register::LFL2 => lfl2,
            register::LFH1 => lfh1,
            register::LFH2 => lfh2,
            register::LGRID => 1,
            register::MODE => self.mode,
            _ => return Outcome::Refused(error::RNI),
        })
    }

    /// The next two characters of the string being transferred.
    fn next_word(&mut self) -> Outcome {
        let Some(transfer) = self.transfer.as_mut() else {
            return Outcome::Refused(error::ERE);
        };
        if transfer.at + 2 > transfer.bytes.len() {
            self.transfer = None;
            return Outcome::Refused(error::ERE);
        }
        let word =
            u16::from_be_bytes([transfer.bytes[transfer.at], transfer.bytes[transfer.at + 1]]);
        transfer.at += 2;
        Outcome::Done(word)
    }

    fn write(&mut self, register: u8, data: u16, now: Instant) -> Outcome {
        if self.string(register).is_some()
            || matches!(
                register,
                register::AEA_EAR
                    | register::LF1
                    | register::LF2
                    | register::LF3
                    | register::OOP
                    | register::CTEMP
                    | register::OPSL
                    | register::OPSH
                    | register::LFL1
                    | register::LFL2
                    | register::LFH1
                    | register::LFH2
                    | register::LGRID
            )
        {
            return Outcome::Refused(error::RNW);
        }
        if register == register::NOP {
            return Outcome::Done(self.nop());
        }
        let turning_off = register == register::RES_ENA && data & SENA == 0;
        if self.pending.is_some() && !turning_off && self.known_writable(register) {
            return Outcome::Refused(error::CIP);
        }
        match register {
            register::GEN_CFG => self.gen_cfg = data,
            register::AEA_EAC => {}
            register::AEA_EA => match self.transfer.as_mut() {
                Some(transfer) if usize::from(data) < transfer.bytes.len() => {
                    transfer.at = usize::from(data);
                }
                _ => return Outcome::Refused(error::ERE),
            },
            register::IO_CAP => self.io_cap = data,
            register::STATUS_F | register::STATUS_W => {}
            register::CHANNEL => return self.set_channel(data, now),
            register::PWR => {
                let dbm100 = data as i16;
                if !(POWER_RANGE.0..=POWER_RANGE.1).contains(&dbm100) {
                    return Outcome::Refused(error::RVE);
                }
                self.power = dbm100;
            }
            register::RES_ENA => return self.res_ena(data, now),
            register::GRID => {
                if self.enabled {
                    return Outcome::Refused(error::CIE);
                }
                self.grid = data as i16;
            }
            register::FCF1 | register::FCF2 | register::FCF3 => {
                return self.set_first_channel(register, data);
            }
            register::MODE => {
                if data > 2 {
                    return Outcome::Refused(error::RVE);
                }
                self.mode = data;
                if self.enabled {
                    self.start(Operation::Mode, now);
                    return Outcome::Started(data);
                }
            }
            _ => return Outcome::Refused(error::RNI),
        }
        Outcome::Done(data)
    }

    fn known_writable(&self, register: u8) -> bool {
        matches!(
            register,
            register::GEN_CFG
                | register::AEA_EAC
                | register::AEA_EA
                | register::IO_CAP
                | register::STATUS_F
                | register::STATUS_W
                | register::CHANNEL
                | register::PWR
                | register::RES_ENA
                | register::GRID
                | register::FCF1
                | register::FCF2
                | register::FCF3
                | register::MODE
        )
    }

    fn set_channel(&mut self, channel: u16, now: Instant) -> Outcome {
        match self.channel_mhz(channel) {
            Some(mhz) if channel >= 1 && self.in_range(mhz) => {}
            _ => return Outcome::Refused(error::RVE),
        }
        self.channel = channel;
        if self.enabled {
            self.start(Operation::Tune, now);
            return Outcome::Started(channel);
        }
        Outcome::Done(channel)
    }

    /// FCF1, FCF2 or FCF3: each within its own range, FCF2 and FCF3 also
    /// making a frequency within the laser's.
    fn set_first_channel(&mut self, register: u8, data: u16) -> Outcome {
        if self.enabled {
            return Outcome::Refused(error::CIE);
        }
        let (low, high) = self.model.range_mhz();
        let (slot, own_range) = match register {
            register::FCF1 => (0, low / 1_000_000..=high / 1_000_000),
            register::FCF2 => (1, 0..=9999),
            _ => (2, 0..=99),
        };
        let mut fcf = self.fcf;
        fcf[slot] = data;
        if slot == 1 {
            fcf[2] = 0; // FCF2 is checked without the MHz part
        }
        let makes_a_frequency = slot == 0 || self.in_range(join_mhz(fcf));
        if !(own_range.contains(&u64::from(data)) && makes_a_frequency) {
            return Outcome::Refused(error::RVE);
        }
        self.fcf[slot] = data;
        Outcome::Done(data)
    }

    /// ResEna: a reset, or the output on (pending until locked) or off.
    fn res_ena(&mut self, data: u16, now: Instant) -> Outcome {
        if data & !(SENA | RESET_BITS) != 0 {
            return Outcome::Refused(error::RVE);
        }
        if data & RESET_BITS != 0 {
            self.reset();
            return Outcome::Done(data);
        }
        if data & SENA == 0 {
            self.enabled = false;
            self.pending = None;
            return Outcome::Done(data);
        }
        if self.enabled {
            return Outcome::Done(data);
        }
        match self.channel_mhz(self.channel) {
            Some(mhz) if self.in_range(mhz) => {}
            _ => return Outcome::Refused(error::IVC),
        }
        self.enabled = true;
        self.start(Operation::Enable, now);
        Outcome::Started(data)
    }

    /// One whole request; the reply, if any.
    fn request(&mut self, bytes: [u8; 4], now: Instant) -> Option<[u8; 4]> {
        if checksum(bytes) != bytes[0] >> 4 {
            // Unprocessed, with CE: the host should send it again.
            return Some(self.reply(frame(CE, bytes[1], 0)));
        }
        if bytes[0] & LST_RSP != 0 {
            return Some(self.reply(self.last_reply));
        }
        let write = bytes[0] & 0x01 != 0;
        let register = bytes[1];
        let data = u16::from_be_bytes([bytes[2], bytes[3]]);
        self.requests.push(Request {
            write,
            register,
            data,
        });
        if self.stalling(write, register) {
            return None;
        }
        self.settle(now);
        let outcome = if write {
            self.write(register, data, now)
        } else {
            self.read(register)
        };
        if write || register != register::NOP {
            self.error = match outcome {
                Outcome::Refused(code) => code,
                _ => error::OK,
            };
        }
        let (status, data) = match outcome {
            Outcome::Done(data) => (status::OK, data),
            Outcome::String(len) => (status::AEA, len),
            Outcome::Started(data) => (status::CP, data),
            Outcome::Refused(_) => (status::XE, 0),
        };
        let reply = frame(status, register, data);
        self.last_reply = reply;
        Some(self.reply(reply))
    }

    /// [`Faults::stall_aea`]: silent from the middle of a string transfer on.
    fn stalling(&mut self, write: bool, register: u8) -> bool {
        if self.stalled {
            return true;
        }
        let halfway = self
            .transfer
            .as_ref()
            .is_some_and(|t| t.at * 2 >= t.bytes.len());
        if !write
            && register == register::AEA_EAR
            && halfway
            && self.faults.stall_aea.load(Ordering::SeqCst)
        {
            self.stalled = true;
        }
        self.stalled
    }

    /// A reply as sent: garbled if the fault says so.
    fn reply(&self, mut reply: [u8; 4]) -> [u8; 4] {
        if self.faults.garble.load(Ordering::SeqCst) {
            reply[0] ^= 0x50; // a checksum that cannot be right
        }
        reply
    }
}

impl SerialDevice for Laser {
    fn receive(&mut self, bytes: &[u8], now: Instant) -> Vec<u8> {
        if self.faults.mute.load(Ordering::SeqCst) {
            self.partial.clear();
            return Vec::new();
        }
        if self
            .last_byte
            .is_some_and(|last| now.duration_since(last) > INTER_BYTE_TIMEOUT)
        {
            self.partial.clear();
        }
        self.last_byte = Some(now);
        self.partial.extend_from_slice(bytes);
        let mut replies = Vec::new();
        while self.partial.len() >= 4 {
            let request: [u8; 4] = self.partial[..4].try_into().expect("4 bytes");
            self.partial.drain(..4);
            if let Some(reply) = self.request(request, now) {
                replies.extend_from_slice(&reply);
            }
        }
        replies
    }
}

/// MHz as FCF1/FCF2/FCF3 (THz, 0.1 GHz, MHz).
fn split_mhz(mhz: u64) -> [u16; 3] {
    [
        (mhz / 1_000_000) as u16,
        (mhz % 1_000_000 / 100) as u16,
        (mhz % 100) as u16,
    ]
}

fn join_mhz([thz, ghz10, mhz]: [u16; 3]) -> u64 {
    u64::from(thz) * 1_000_000 + u64::from(ghz10) * 100 + u64::from(mhz)
}

/// The laser behind a mutex: the PTY's thread drives it, a test looks.
struct Shared(Arc<Mutex<Laser>>);

impl SerialDevice for Shared {
    fn receive(&mut self, bytes: &[u8], now: Instant) -> Vec<u8> {
        lock(&self.0).receive(bytes, now)
    }
}

fn lock(laser: &Mutex<Laser>) -> MutexGuard<'_, Laser> {
    laser
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A simulated PPCL55x on a pseudo-terminal; unplugged when dropped.
pub struct Simulator {
    port: Plug,
    laser: Arc<Mutex<Laser>>,
    /// How it misbehaves.
    pub faults: Arc<Faults>,
}

impl Simulator {
    /// A PPCL550 with [`Timing::default`].
    pub fn start() -> io::Result<Simulator> {
        Simulator::start_with(Model::Ppcl550, Timing::default())
    }

    /// A laser of `model` whose pending operations take `timing`.
    pub fn start_with(model: Model, timing: Timing) -> io::Result<Simulator> {
        Simulator::serve(model, timing, |laser| Ok(Plug::Pty(PtyPort::start(laser)?)))
    }

    /// A laser of `model` behind a serial-to-Ethernet adapter on
    /// `host:port` (0: a free port).
    pub fn start_on_tcp(model: Model, host: &str, port: u16) -> io::Result<Simulator> {
        Simulator::serve(model, Timing::default(), |laser| {
            Ok(Plug::Tcp(TcpPort::start(laser, host, port)?))
        })
    }

    fn serve(
        model: Model,
        timing: Timing,
        plug: impl FnOnce(Shared) -> io::Result<Plug>,
    ) -> io::Result<Simulator> {
        let faults = Arc::new(Faults::default());
        let laser = Arc::new(Mutex::new(Laser::new(model, timing, Arc::clone(&faults))));
        let port = plug(Shared(Arc::clone(&laser)))?;
        Ok(Simulator {
            port,
            laser,
            faults,
        })
    }

    /// The serial port to give the driver (`/dev/pts/N`).
    pub fn path(&self) -> &Path {
        self.port.path()
    }

    /// The VISA resource naming it (`ASRL/dev/pts/N::INSTR`).
    pub fn resource(&self) -> String {
        self.port.resource()
    }

    /// Pulls the cable: the laser stops and the port closes.
    pub fn unplug(&mut self) {
        self.port.unplug();
    }

    /// Whether an operation (turning on, tuning, a mode change) is pending.
    pub fn pending(&self) -> bool {
        lock(&self.laser).pending(Instant::now())
    }

    /// Whether the output is on.
    pub fn enabled(&self) -> bool {
        lock(&self.laser).enabled()
    }

    /// Whether it stopped answering mid-transfer ([`Faults::stall_aea`]).
    pub fn stalled(&self) -> bool {
        lock(&self.laser).stalled()
    }

    /// The requests it received, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.laser).requests().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laser(timing: Timing) -> Laser {
        Laser::new(Model::Ppcl550, timing, Arc::default())
    }

    /// Sends one request; returns (status, data) of the reply.
    fn exchange(
        laser: &mut Laser,
        write: bool,
        register: u8,
        data: u16,
        now: Instant,
    ) -> (u8, u16) {
        let reply = laser.receive(&request(write, register, data), now);
        decode(&reply)
    }

    fn decode(reply: &[u8]) -> (u8, u16) {
        let frame: [u8; 4] = reply.try_into().expect("one 4-byte reply");
        assert_eq!(checksum(frame), frame[0] >> 4, "reply checksum");
        (frame[0] & 0x0B, u16::from_be_bytes([frame[2], frame[3]]))
    }

    fn read(laser: &mut Laser, register: u8, now: Instant) -> (u8, u16) {
        exchange(laser, false, register, 0, now)
    }

    fn write(laser: &mut Laser, register: u8, data: u16, now: Instant) -> (u8, u16) {
        exchange(laser, true, register, data, now)
    }

    #[test]
    fn the_checksum_is_bip4_as_in_the_msa() {
        // A NOP read, and an idle laser's reply to it (MRDY set).
        assert_eq!(request(false, register::NOP, 0), [0x00, 0x00, 0x00, 0x00]);
        assert_eq!(frame(0, register::NOP, MRDY), [0x10, 0x00, 0x00, 0x10]);
        assert_eq!(
            request(true, register::RES_ENA, SENA),
            [0x81, 0x32, 0x00, 0x08]
        );
    }

    #[test]
    fn errors_are_xe_with_the_reason_in_nop() {
        let mut laser = laser(Timing::default());
        let now = Instant::now();
        assert_eq!(read(&mut laser, 0x7F, now), (status::XE, 0));
        assert_eq!(
            read(&mut laser, register::NOP, now).1 & 0x0F,
            u16::from(error::RNI)
        );
        // A NOP read leaves the field; the next command sets it.
        assert_eq!(
            read(&mut laser, register::NOP, now).1 & 0x0F,
            u16::from(error::RNI)
        );
        assert_eq!(write(&mut laser, register::PWR, 2000, now), (status::XE, 0));
        assert_eq!(
            read(&mut laser, register::NOP, now).1 & 0x0F,
            u16::from(error::RVE)
        );
        assert_eq!(write(&mut laser, register::OOP, 0, now).0, status::XE);
        assert_eq!(
            read(&mut laser, register::NOP, now).1 & 0x0F,
            u16::from(error::RNW)
        );
        assert_eq!(
            write(&mut laser, register::PWR, 1200, now),
            (status::OK, 1200)
        );
        assert_eq!(read(&mut laser, register::NOP, now), (status::OK, MRDY));
    }

    #[test]
    fn a_corrupted_request_is_answered_with_ce_and_not_executed() {
        let mut laser = laser(Timing::default());
        let now = Instant::now();
        let mut bad = request(true, register::PWR, 700);
        bad[3] ^= 0x01;
        let reply = laser.receive(&bad, now);
        assert_eq!(reply[0] & CE, CE);
        assert_eq!(read(&mut laser, register::PWR, now), (status::OK, 1000));
        // LstRsp: the last reply again.
        let again = laser.receive(&frame(LST_RSP, 0, 0), now);
        assert_eq!(decode(&again), (status::OK, 1000));
    }

    #[test]
    fn a_partial_frame_is_dropped_after_the_inter_byte_timeout() {
        let mut laser = laser(Timing::default());
        let now = Instant::now();
        assert!(laser.receive(&[0xFF, 0x12], now).is_empty());
        let later = now + INTER_BYTE_TIMEOUT * 2;
        let reply = laser.receive(&request(false, register::CHANNEL, 0), later);
        assert_eq!(decode(&reply), (status::OK, 1));
    }

    #[test]
    fn turning_on_is_pending_until_the_laser_is_locked() {
        let timing = Timing {
            enable: Duration::from_millis(100),
            ..Timing::default()
        };
        let mut laser = laser(timing);
        let t0 = Instant::now();
        assert_eq!(read(&mut laser, register::OOP, t0).1 as i16, DARK_POWER);
        assert_eq!(
            write(&mut laser, register::RES_ENA, SENA, t0),
            (status::CP, SENA)
        );
        let (_, nop) = read(&mut laser, register::NOP, t0);
        assert_eq!(nop & 0xFF00, PENDING_TUNE);
        assert_eq!(nop & MRDY, 0);
        // Writes are ignored meanwhile (CIP); reads are answered.
        assert_eq!(write(&mut laser, register::PWR, 900, t0).0, status::XE);
        assert_eq!(
            read(&mut laser, register::NOP, t0).1 & 0x0F,
            u16::from(error::CIP)
        );
        assert_eq!(read(&mut laser, register::OOP, t0).1 as i16, DARK_POWER);
        let t1 = t0 + Duration::from_millis(150);
        assert_eq!(read(&mut laser, register::NOP, t1), (status::OK, MRDY));
        assert_eq!(read(&mut laser, register::OOP, t1), (status::OK, 1000));
        assert_eq!(read(&mut laser, register::RES_ENA, t1), (status::OK, SENA));
        // The frequency is set only while off.
        assert_eq!(write(&mut laser, register::FCF1, 192, t1).0, status::XE);
        assert_eq!(
            read(&mut laser, register::NOP, t1).1 & 0x0F,
            u16::from(error::CIE)
        );
        assert_eq!(write(&mut laser, register::RES_ENA, 0, t1), (status::OK, 0));
        assert_eq!(read(&mut laser, register::OOP, t1).1 as i16, DARK_POWER);
    }

    #[test]
    fn the_frequency_is_three_registers_checked_against_the_range() {
        let mut laser = laser(Timing::default());
        let now = Instant::now();
        // 195.1234 THz + 5 MHz.
        assert_eq!(write(&mut laser, register::FCF1, 195, now).0, status::OK);
        assert_eq!(write(&mut laser, register::FCF2, 1234, now).0, status::OK);
        assert_eq!(write(&mut laser, register::FCF3, 5, now).0, status::OK);
        assert_eq!(read(&mut laser, register::LF1, now).1, 195);
        assert_eq!(read(&mut laser, register::LF2, now).1, 1234);
        assert_eq!(read(&mut laser, register::LF3, now).1, 5);
        // Out of the laser's range: 197 THz, 196.3 THz, 191.4 THz.
        assert_eq!(write(&mut laser, register::FCF1, 197, now).0, status::XE);
        assert_eq!(
            read(&mut laser, register::NOP, now).1 & 0x0F,
            u16::from(error::RVE)
        );
        assert_eq!(write(&mut laser, register::FCF1, 196, now).0, status::OK);
        assert_eq!(write(&mut laser, register::FCF2, 3000, now).0, status::XE);
        assert_eq!(write(&mut laser, register::FCF1, 191, now).0, status::OK);
        assert_eq!(write(&mut laser, register::FCF2, 4000, now).0, status::XE);
        assert_eq!(write(&mut laser, register::FCF2, 9999, now).0, status::OK);
        assert_eq!(write(&mut laser, register::FCF3, 100, now).0, status::XE);
    }

    #[test]
    fn a_channel_change_while_on_is_a_pending_tune() {
        let timing = Timing {
            enable: Duration::ZERO,
            tune: Duration::from_millis(100),
            ..Timing::default()
        };
        let mut laser = laser(timing);
        let t0 = Instant::now();
        write(&mut laser, register::GRID, 500, t0); // 50 GHz
        write(&mut laser, register::RES_ENA, SENA, t0);
        assert_eq!(write(&mut laser, register::CHANNEL, 3, t0), (status::CP, 3));
        // Still where it was until the tune ends.
        assert_eq!(read(&mut laser, register::LF2, t0).1, 4000);
        let t1 = t0 + Duration::from_millis(150);
        assert_eq!(read(&mut laser, register::LF1, t1).1, 193);
        assert_eq!(read(&mut laser, register::LF2, t1).1, 5000);
        assert_eq!(write(&mut laser, register::CHANNEL, 0, t1).0, status::XE);
        assert_eq!(write(&mut laser, register::CHANNEL, 200, t1).0, status::XE);
    }

    #[test]
    fn strings_come_by_automatic_extended_addressing() {
        let mut laser = laser(Timing::default());
        let now = Instant::now();
        let (answer, len) = read(&mut laser, register::MODEL, now);
        assert_eq!((answer, len), (status::AEA, 8));
        let mut text = Vec::new();
        for _ in 0..len / 2 {
            let (answer, word) = read(&mut laser, register::AEA_EAR, now);
            assert_eq!(answer, status::OK);
            text.extend_from_slice(&word.to_be_bytes());
        }
        assert_eq!(text, b"PPCL550\0");
        // Past the end: ERE.
        assert_eq!(read(&mut laser, register::AEA_EAR, now).0, status::XE);
        assert_eq!(
            read(&mut laser, register::NOP, now).1 & 0x0F,
            u16::from(error::ERE)
        );
    }

    #[test]
    fn whisper_mode_while_on_is_pending_and_out_of_range_modes_are_refused() {
        let timing = Timing {
            enable: Duration::ZERO,
            mode: Duration::from_millis(50),
            ..Timing::default()
        };
        let mut laser = laser(timing);
        let t0 = Instant::now();
        assert_eq!(write(&mut laser, register::MODE, 3, t0).0, status::XE);
        write(&mut laser, register::RES_ENA, SENA, t0);
        assert_eq!(write(&mut laser, register::MODE, 2, t0), (status::CP, 2));
        assert_eq!(read(&mut laser, register::NOP, t0).1 & 0xFF00, PENDING_MODE);
        let t1 = t0 + Duration::from_millis(60);
        assert_eq!(read(&mut laser, register::MODE, t1), (status::OK, 2));
    }

    #[test]
    fn faults_mute_garble_and_stall() {
        let faults = Arc::new(Faults::default());
        let mut laser = Laser::new(Model::Ppcl551, Timing::default(), Arc::clone(&faults));
        let now = Instant::now();
        faults.mute.store(true, Ordering::SeqCst);
        assert!(
            laser
                .receive(&request(false, register::NOP, 0), now)
                .is_empty()
        );
        faults.mute.store(false, Ordering::SeqCst);
        faults.garble.store(true, Ordering::SeqCst);
        let reply = laser.receive(&request(false, register::NOP, 0), now);
        let frame: [u8; 4] = reply.try_into().unwrap();
        assert_ne!(checksum(frame), frame[0] >> 4);
        faults.garble.store(false, Ordering::SeqCst);
        faults.stall_aea.store(true, Ordering::SeqCst);
        let (_, len) = read(&mut laser, register::SER_NO, now);
        let answered = (0..len / 2)
            .take_while(|_| {
                !laser
                    .receive(&request(false, register::AEA_EAR, 0), now)
                    .is_empty()
            })
            .count();
        assert_eq!(answered, usize::from(len / 4));
        assert!(laser.stalled());
    }

    #[test]
    fn it_serves_a_pty() {
        use std::io::{Read, Write};
        let simulator = Simulator::start().unwrap();
        use std::os::unix::fs::OpenOptionsExt;
        let mut port = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(simulator.path())
            .unwrap();
        port.write_all(&request(false, register::PWR, 0)).unwrap();
        let mut reply = [0u8; 4];
        port.read_exact(&mut reply).unwrap();
        assert_eq!(decode(&reply), (status::OK, 1000));
        assert_eq!(simulator.requests().len(), 1);
        assert!(simulator.resource().starts_with("ASRL/dev/pts/"));
    }
}
