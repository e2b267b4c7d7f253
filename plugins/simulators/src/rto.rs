//! A simulated Rohde & Schwarz RTO oscilloscope (an RTO2044: four
//! channels), from its user manual's remote-command chapters (the
//! commands PyroLab's driver sends, and their queries): channels
//! (state, coupling, range, position, offset, inversion, the digital
//! filter), the timebase, the sample rate and the record length it gives
//! (over [`MAX_RECORD_LENGTH`] is refused with `-222,"Data out of range"`,
//! as the manual warns), the edge trigger, single and continuous
//! acquisitions that take the time their settings give, waveforms in
//! ASCII, `REAL,32`, `INT,8` and `INT,16`, automatic measurements,
//! screenshots (`HCOP:IMM` renders a PNG into the instrument's files,
//! `MMEM:DATA?` reads it), and the error queue.
//!
//! Signals: channel 1 sees a 1 MHz sine of 0.2 V amplitude, channel 2 a
//! 1 MHz square of ±0.1 V, channel 3 a 100 kHz ramp from 0 to 0.4 V, and
//! channel 4 noise of 20 mV RMS; each with 1 mV of noise, new for each
//! acquisition. An acquisition in normal trigger mode whose level the
//! signal never crosses never ends (PyroLab's "Common Issues"): `*OPC?`
//! and the waveform queries wait for it, until `STOP`.
//!
//! It serves a TCP socket as the instrument's port 5025 does
//! (`TCPIP0::HOST::PORT::SOCKET`), several clients at once sharing one
//! scope, and can be told to misbehave ([`Faults`]).

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What `*IDN?` answers.
pub const IDENTITY: &str = "Rohde&Schwarz,RTO2044,1329.7002k44/200123,4.70.1.0";
/// The most samples one record holds (the RTO2044's memory option).
pub const MAX_RECORD_LENGTH: f64 = 200e6;
/// The sample rates it takes (interpolated above the ADC's), Sa/s.
pub const SAMPLE_RATES: (f64, f64) = (2.0, 20e12);
/// The time scales it takes, s/div.
pub const TIME_SCALES: (f64, f64) = (25e-12, 10_000.0);
/// ADC codes per vertical division (8 bits over 10 divisions and a
/// little headroom); `INT,16` has 256 times as many.
pub const CODES_PER_DIVISION: f64 = 25.3;
/// The cutoff frequencies of the digital filter, Hz.
const CUTOFFS: [f64; 14] = [
    1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 2e8, 5e8, 1e9, 2e9,
];
/// The time an acquisition takes beyond its record's own, per sample
/// (processing and memory).
const PROCESSING_PER_SAMPLE: Duration = Duration::from_nanos(5);

/// How the simulator misbehaves, set from outside while it runs.
#[derive(Default)]
pub struct Faults {
    /// It reads commands and answers nothing.
    pub mute: AtomicBool,
    /// It answers every query with bytes that are not a reply.
    pub garble: AtomicBool,
    /// It drops the connection halfway through the next binary block.
    pub drop_mid_transfer: AtomicBool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Coupling {
    Dc,
    DcLimit,
    Ac,
}

impl Coupling {
    fn name(self) -> &'static str {
        match self {
            Coupling::Dc => "DC",
            Coupling::DcLimit => "DCL",
            Coupling::Ac => "AC",
        }
    }

    /// The vertical range it allows (10 divisions), V.
    fn range_limits(self) -> (f64, f64) {
        match self {
            Coupling::Dc => (0.01, 10.0),
            Coupling::DcLimit | Coupling::Ac => (0.01, 100.0),
        }
    }
}

#[derive(Clone, Debug)]
struct Channel {
    on: bool,
    coupling: Coupling,
    /// Volts over the 10 vertical divisions.
    range: f64,
    /// Divisions.
    position: f64,
    offset: f64,
    invert: bool,
    filter: bool,
}

impl Default for Channel {
    fn default() -> Self {
        Channel {
            on: false,
            coupling: Coupling::Dc,
            range: 0.5,
            position: 0.0,
            offset: 0.0,
            invert: false,
            filter: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum TriggerMode {
    Auto,
    Normal,
    FreeRun,
}

#[derive(Clone, Debug)]
struct Trigger {
    mode: TriggerMode,
    /// 0-3: a channel; 4: the external input.
    source: usize,
    /// The level for each source, V.
    levels: [f64; 5],
    slope: &'static str,
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger {
            mode: TriggerMode::Auto,
            source: 0,
            levels: [0.0; 5],
            slope: "POS",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Ascii,
    Real32,
    Int8,
    Int16,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Ascii => "ASC,0",
            Format::Real32 => "REAL,32",
            Format::Int8 => "INT,8",
            Format::Int16 => "INT,16",
        }
    }
}

/// One record, as the acquisition that made it saw the settings.
#[derive(Clone, Debug)]
struct Capture {
    channels: [Channel; 4],
    sample_rate: f64,
    length: usize,
    /// The time of the first sample, relative to the trigger (s).
    start: f64,
    seed: u64,
}

impl Capture {
    /// The waveform of `channel` in volts, as the ADC saw it (clipped at
    /// the screen's edges, a little beyond).
    fn volts(&self, channel: usize) -> Vec<f32> {
        let settings = &self.channels[channel];
        let mut noise = Noise(self.seed ^ (channel as u64 + 1).wrapping_mul(0x9E37_79B9));
        let division = settings.range / 10.0;
        let low = settings.offset - (5.0 + settings.position) * division * 1.02;
        let high = settings.offset + (5.0 - settings.position) * division * 1.02;
        let mean = if settings.coupling == Coupling::Ac {
            signal_mean(channel)
        } else {
            0.0
        };
        (0..self.length)
            .map(|i| {
                let t = self.start + i as f64 / self.sample_rate;
                let mut v = signal(channel, t, &mut noise) - mean;
                if settings.invert {
                    v = -v;
                }
                v.clamp(low, high) as f32
            })
            .collect()
    }

    /// `volts` as ADC codes of `bits` (8 or 16).
    fn codes(&self, channel: usize, volts: &[f32], bits: u32) -> Vec<i32> {
        let settings = &self.channels[channel];
        let per_volt = CODES_PER_DIVISION * f64::from(1u32 << (bits - 8)) / (settings.range / 10.0);
        let zero = -settings.offset * per_volt + settings.position * CODES_PER_DIVISION;
        let (min, max) = if bits == 8 {
            (i8::MIN as f64, i8::MAX as f64)
        } else {
            (i16::MIN as f64, i16::MAX as f64)
        };
        volts
            .iter()
            .map(|&v| (f64::from(v) * per_volt + zero).round().clamp(min, max) as i32)
            .collect()
    }
}

/// The signal on `channel` at `t`, V.
fn signal(channel: usize, t: f64, noise: &mut Noise) -> f64 {
    use std::f64::consts::TAU;
    let base = match channel {
        0 => 0.2 * (TAU * 1e6 * t).sin(),
        1 => {
            if (t * 1e6).rem_euclid(1.0) < 0.5 {
                0.1
            } else {
                -0.1
            }
        }
        2 => 0.4 * (t * 1e5).rem_euclid(1.0),
        _ => 0.02 * noise.gaussian(),
    };
    base + 0.001 * noise.gaussian()
}

fn signal_mean(channel: usize) -> f64 {
    if channel == 2 { 0.2 } else { 0.0 }
}

/// The lowest and highest the signal on `channel` goes (noise aside).
fn signal_extent(channel: usize) -> (f64, f64) {
    match channel {
        0 => (-0.2, 0.2),
        1 => (-0.1, 0.1),
        2 => (0.0, 0.4),
        _ => (-0.06, 0.06),
    }
}

/// A small, fast generator (xorshift64*), seeded per acquisition.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (Irwin-Hall of four), unit variance.
    fn gaussian(&mut self) -> f64 {
        (self.next() + self.next() + self.next() + self.next() - 2.0) * 3f64.sqrt()
    }
}

/// An acquisition in progress.
#[derive(Clone, Debug)]
struct Running {
    /// When it ends: `None` when its trigger never comes.
    until: Option<Instant>,
    capture: Capture,
    /// `RUN`: it goes on after each record until `STOP`.
    continuous: bool,
}

#[derive(Clone, Copy, Debug)]
struct Measurement {
    source: usize,
    kind: &'static str,
    on: bool,
}

/// The measurement types the simulator computes (`MEAS:MAIN`).
const MEASUREMENTS: [&str; 8] = ["MAX", "MIN", "HIGH", "LOW", "AMPL", "PDEL", "MEAN", "RMS"];

/// The scope's state.
struct Scope {
    channels: [Channel; 4],
    time_scale: f64,
    sample_rate: f64,
    realtime: bool,
    trigger: Trigger,
    format: Format,
    little_endian: bool,
    display_update: bool,
    errors: VecDeque<String>,
    running: Option<Running>,
    last: Option<Capture>,
    acquisitions: u64,
    measurements: [Measurement; 8],
    /// The digital filter's cutoff for channels 1-2 and 3-4.
    cutoffs: [f64; 2],
    hardcopy_language: &'static str,
    file_name: String,
    files: HashMap<String, Vec<u8>>,
    /// The last waveform made, for the next query of the same record.
    made: Option<(WaveformKey, Arc<Vec<u8>>)>,
}

/// What a waveform's bytes depend on: the record, the channel, the
/// format and the byte order.
type WaveformKey = (u64, usize, Format, bool);

impl Default for Scope {
    fn default() -> Self {
        let mut channels: [Channel; 4] = Default::default();
        channels[0].on = true;
        Scope {
            channels,
            time_scale: 10e-9,
            sample_rate: 10e9,
            realtime: false,
            trigger: Trigger::default(),
            format: Format::Ascii,
            little_endian: true,
            display_update: false,
            errors: VecDeque::new(),
            running: None,
            last: None,
            acquisitions: 0,
            measurements: [Measurement {
                source: 0,
                kind: "AMPL",
                on: false,
            }; 8],
            cutoffs: [2e9; 2],
            hardcopy_language: "PNG",
            file_name: "C:\\Users\\Public\\Documents\\Rohde-Schwarz\\RTx\\Hardcopy.png".into(),
            files: HashMap::new(),
            made: None,
        }
    }
}

/// What the scope sends for one query.
#[derive(Debug)]
enum Reply {
    Line(String),
    /// Shared: a waveform of many megabytes is made once per record and
    /// sent without copying.
    Block(Arc<Vec<u8>>),
    /// Waits for the acquisition in progress, then is rendered.
    After(Deferred),
}

#[derive(Debug)]
enum Deferred {
    Complete,
    Waveform(usize, Format),
    Header(usize),
    Measure(usize),
}

/// One parsed command: its header's nodes (short forms, upper case, with
/// their numeric suffixes) and its argument.
struct Command<'a> {
    nodes: Vec<(String, Option<u32>)>,
    query: bool,
    argument: &'a str,
    text: &'a str,
}

impl Command<'_> {
    /// The header without suffixes, `CHAN:STAT`.
    fn path(&self) -> String {
        self.nodes
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The suffix of the node `name` (1 when absent).
    fn suffix(&self, name: &str) -> u32 {
        self.nodes
            .iter()
            .find(|(node, _)| node == name)
            .and_then(|(_, suffix)| *suffix)
            .unwrap_or(1)
    }
}

/// The long forms of the mnemonics it knows; the short form is their
/// capitals.
const MNEMONICS: &[&str] = &[
    "ACQuire",
    "ACTual",
    "AUTO",
    "BORDer",
    "CHANnel",
    "COUNt",
    "COUPling",
    "CURRent",
    "CUToff",
    "DATA",
    "DEVice",
    "DIGFilter",
    "DISPlay",
    "EDGE",
    "ENABle",
    "ERRor",
    "FORMat",
    "HCOPy",
    "HEADer",
    "IMMediate",
    "INVert",
    "LANGuage",
    "LEVel",
    "MAIN",
    "MEASurement",
    "MMEMory",
    "MODE",
    "NAME",
    "NEXT",
    "OFFSet",
    "POINts",
    "POSition",
    "RANGe",
    "RESult",
    "RUN",
    "SCALe",
    "SINGle",
    "SLOPe",
    "SOURce",
    "SRATe",
    "STATe",
    "STOP",
    "SYSTem",
    "TIMebase",
    "TRIGger",
    "TYPE",
    "UPDate",
    "VALues",
    "WAVeform",
];

fn short_form(long: &str) -> String {
    let capitals: String = long.chars().filter(char::is_ascii_uppercase).collect();
    if capitals.is_empty() {
        long.to_ascii_uppercase()
    } else {
        capitals
    }
}

/// `CHANNEL12` → `("CHAN", Some(12))`; `None` for a mnemonic it does not know.
fn node(text: &str) -> Option<(String, Option<u32>)> {
    let digits = text.len() - text.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (name, number) = text.split_at(text.len() - digits);
    let upper = name.to_ascii_uppercase();
    let suffix = if number.is_empty() {
        None
    } else {
        Some(number.parse().ok()?)
    };
    MNEMONICS
        .iter()
        .find(|long| long.to_ascii_uppercase() == upper || short_form(long) == upper)
        .map(|long| (short_form(long), suffix))
}

/// Takes the optional nodes out (`CHAN1:WAV1:DATA:VAL?` is
/// `CHAN1:DATA?`, `FORM:DATA` is `FORM`, `MEAS1:ENAB` is `MEAS1`).
fn without_optional_nodes(nodes: &mut Vec<(String, Option<u32>)>) {
    let optional = |previous: &str, node: &str| {
        matches!(
            (previous, node),
            ("CHAN", "WAV")
                | ("DATA", "VAL")
                | ("FORM", "DATA")
                | ("MEAS", "ENAB")
                | ("RES", "ACT")
        )
    };
    let mut i = 1;
    while i < nodes.len() {
        if optional(&nodes[i - 1].0, &nodes[i].0) {
            nodes.remove(i);
        } else {
            i += 1;
        }
    }
}

fn on_off(argument: &str) -> Option<bool> {
    match argument.trim().to_ascii_uppercase().as_str() {
        "ON" | "1" => Some(true),
        "OFF" | "0" => Some(false),
        _ => None,
    }
}

fn number(argument: &str) -> Option<f64> {
    argument.trim().parse().ok().filter(|v: &f64| v.is_finite())
}

fn format_number(value: f64) -> String {
    format!("{value:E}")
}

impl Scope {
    /// One line from the client: commands separated by `;`, each
    /// relative to the previous one's path unless it starts with `:` or
    /// `*`. Returns the replies, in order.
    fn line(&mut self, line: &str, now: Instant) -> Vec<Reply> {
        let mut replies = Vec::new();
        let mut prefix: Vec<(String, Option<u32>)> = Vec::new();
        for part in split_commands(line) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (header, argument) = part.split_once(char::is_whitespace).unwrap_or((part, ""));
            let query = header.ends_with('?');
            let header = header.trim_end_matches('?');
            if let Some(common) = header.strip_prefix('*') {
                self.common(&common.to_ascii_uppercase(), query, part, &mut replies, now);
                continue;
            }
            let absolute = header.starts_with(':');
            let parsed: Option<Vec<_>> = header
                .trim_start_matches(':')
                .split(':')
                .map(node)
                .collect();
            let Some(parsed) = parsed else {
                self.error(-113, "Undefined header", part);
                continue;
            };
            let mut nodes = if absolute { Vec::new() } else { prefix.clone() };
            nodes.extend(parsed);
            prefix = nodes[..nodes.len() - 1].to_vec();
            without_optional_nodes(&mut nodes);
            let command = Command {
                nodes,
                query,
                argument: argument.trim(),
                text: part,
            };
            self.command(&command, &mut replies, now);
        }
        replies
    }

    fn error(&mut self, code: i32, message: &str, command: &str) {
        if self.errors.len() < 100 {
            let command = command.trim_start_matches(':');
            self.errors
                .push_back(format!("{code},\"{message};{command}\""));
        }
    }

    fn common(
        &mut self,
        name: &str,
        query: bool,
        text: &str,
        replies: &mut Vec<Reply>,
        now: Instant,
    ) {
        match (name, query) {
            ("IDN", true) => replies.push(Reply::Line(IDENTITY.into())),
            ("OPC", true) => replies.push(Reply::After(Deferred::Complete)),
            ("OPC", false) | ("WAI", false) => {}
            ("RST", false) => {
                let files = std::mem::take(&mut self.files);
                *self = Scope {
                    files,
                    ..Scope::default()
                };
            }
            ("CLS", false) => self.errors.clear(),
            ("ESR", true) => replies.push(Reply::Line(
                if self.errors.is_empty() { "0" } else { "32" }.into(),
            )),
            ("TRG", false) => {
                if let Some(running) = self.running.as_mut()
                    && running.until.is_none()
                {
                    running.until = Some(now);
                }
            }
            _ => self.error(-113, "Undefined header", text),
        }
    }

    fn command(&mut self, command: &Command, replies: &mut Vec<Reply>, now: Instant) {
        let path = command.path();
        let text = command.text;
        let argument = command.argument;
        let reply = |replies: &mut Vec<Reply>, text: String| replies.push(Reply::Line(text));
        match (path.as_str(), command.query) {
            ("SYST:ERR" | "SYST:ERR:NEXT", true) => {
                let next = self.errors.pop_front();
                reply(replies, next.unwrap_or_else(|| "0,\"No error\"".into()));
            }
            ("SYST:DISP:UPD", false) => match on_off(argument) {
                Some(on) => self.display_update = on,
                None => self.error(-224, "Illegal parameter value", text),
            },
            ("SYST:DISP:UPD", true) => reply(replies, u8::from(self.display_update).to_string()),
            ("RUN", false) => self.start(true, now),
            ("SING", false) => self.start(false, now),
            ("STOP", false) => self.stop(now),
            ("ACQ:CURR", true) => reply(replies, self.acquisitions.to_string()),
            ("ACQ:POIN:AUTO", false) => {
                if !argument.to_ascii_uppercase().starts_with("RES") {
                    self.error(-224, "Illegal parameter value", text);
                }
            }
            ("ACQ:POIN", true) => reply(replies, self.record_length().to_string()),
            ("ACQ:SRAT", false) => match number(argument) {
                Some(rate) if (SAMPLE_RATES.0..=SAMPLE_RATES.1).contains(&rate) => {
                    self.set_record(rate, self.time_scale, text);
                }
                _ => self.error(-222, "Data out of range", text),
            },
            ("ACQ:SRAT", true) => reply(replies, format_number(self.sample_rate)),
            ("ACQ:MODE", false) => match argument.to_ascii_uppercase().as_str() {
                "RTIM" | "RTIME" => self.realtime = true,
                "ITIM" | "ITIME" => self.realtime = false,
                _ => self.error(-224, "Illegal parameter value", text),
            },
            ("ACQ:MODE", true) => {
                reply(replies, if self.realtime { "RTIM" } else { "ITIM" }.into())
            }
            ("TIM:SCAL", false) => match number(argument) {
                Some(scale) if (TIME_SCALES.0..=TIME_SCALES.1).contains(&scale) => {
                    self.set_time_scale(scale);
                }
                _ => self.error(-222, "Data out of range", text),
            },
            ("TIM:SCAL", true) => reply(replies, format_number(self.time_scale)),
            ("TIM:RANG", false) => match number(argument) {
                Some(range) if (TIME_SCALES.0 * 10.0..=TIME_SCALES.1 * 10.0).contains(&range) => {
                    self.set_time_scale(range / 10.0);
                }
                _ => self.error(-222, "Data out of range", text),
            },
            ("TIM:RANG", true) => reply(replies, format_number(self.time_scale * 10.0)),
            ("FORM", false) => self.set_format(argument, text),
            ("FORM", true) => reply(replies, self.format.name().into()),
            ("FORM:BORD", false) => match argument.to_ascii_uppercase().as_str() {
                "LSBF" | "LSBFIRST" => self.little_endian = true,
                "MSBF" | "MSBFIRST" => self.little_endian = false,
                _ => self.error(-224, "Illegal parameter value", text),
            },
            ("HCOP:DEV:LANG", false) => {
                match argument.trim_matches('\'').to_ascii_uppercase().as_str() {
                    "PNG" => self.hardcopy_language = "PNG",
                    "BMP" => self.hardcopy_language = "BMP",
                    _ => self.error(-224, "Illegal parameter value", text),
                }
            }
            ("HCOP:DEV:LANG", true) => reply(replies, self.hardcopy_language.into()),
            ("MMEM:NAME", false) => match quoted(argument) {
                Some(name) if !name.is_empty() => self.file_name = name,
                _ => self.error(-224, "Illegal parameter value", text),
            },
            ("MMEM:NAME", true) => reply(replies, format!("'{}'", self.file_name)),
            ("HCOP:IMM", false) => {
                let image = self.screenshot();
                if self.files.len() < 64 {
                    self.files
                        .insert(self.file_name.to_ascii_lowercase(), image);
                } else {
                    self.error(-250, "Mass storage error", text);
                }
            }
            ("MMEM:DATA", true) => {
                match quoted(argument).and_then(|name| self.files.get(&name.to_ascii_lowercase())) {
                    Some(data) => replies.push(Reply::Block(Arc::new(data.clone()))),
                    None => {
                        self.error(-256, "File name not found", text);
                        replies.push(Reply::Block(Arc::default()));
                    }
                }
            }
            _ if path.starts_with("CHAN") => self.channel_command(command, replies),
            _ if path.starts_with("TRIG") => self.trigger_command(command, replies),
            _ if path.starts_with("MEAS") => self.measurement_command(command, replies),
            _ => self.error(-113, "Undefined header", text),
        }
    }

    fn channel_command(&mut self, command: &Command, replies: &mut Vec<Reply>) {
        let (text, argument) = (command.text, command.argument);
        let index = command.suffix("CHAN") as usize;
        if !(1..=4).contains(&index) {
            return self.error(-114, "Header suffix out of range", text);
        }
        let index = index - 1;
        let path = command.path();
        let channel = &mut self.channels[index];
        let mut answer = None;
        let mut bad = None;
        match (path.as_str(), command.query) {
            ("CHAN:STAT", false) => match on_off(argument) {
                Some(on) => channel.on = on,
                None => bad = Some((-224, "Illegal parameter value")),
            },
            ("CHAN:STAT", true) => answer = Some(u8::from(channel.on).to_string()),
            ("CHAN:COUP", false) => match argument.to_ascii_uppercase().as_str() {
                "DC" => channel.coupling = Coupling::Dc,
                "DCL" | "DCLIMIT" => channel.coupling = Coupling::DcLimit,
                "AC" => channel.coupling = Coupling::Ac,
                _ => bad = Some((-224, "Illegal parameter value")),
            },
            ("CHAN:COUP", true) => answer = Some(channel.coupling.name().into()),
            ("CHAN:RANG", false) => {
                let (min, max) = channel.coupling.range_limits();
                match number(argument) {
                    Some(range) if (min..=max).contains(&range) => channel.range = range,
                    _ => bad = Some((-222, "Data out of range")),
                }
            }
            ("CHAN:RANG", true) => answer = Some(format_number(channel.range)),
            ("CHAN:SCAL", false) => {
                let (min, max) = channel.coupling.range_limits();
                match number(argument) {
                    Some(scale) if (min..=max).contains(&(scale * 10.0)) => {
                        channel.range = scale * 10.0;
                    }
                    _ => bad = Some((-222, "Data out of range")),
                }
            }
            ("CHAN:SCAL", true) => answer = Some(format_number(channel.range / 10.0)),
            ("CHAN:POS", false) => match number(argument) {
                Some(position) if (-5.0..=5.0).contains(&position) => channel.position = position,
                _ => bad = Some((-222, "Data out of range")),
            },
            ("CHAN:POS", true) => answer = Some(format_number(channel.position)),
            ("CHAN:OFFS", false) => match number(argument) {
                Some(offset) if offset.abs() <= offset_limit(channel) => channel.offset = offset,
                _ => bad = Some((-222, "Data out of range")),
            },
            ("CHAN:OFFS", true) => answer = Some(format_number(channel.offset)),
            ("CHAN:INV", false) => match on_off(argument) {
                Some(on) => channel.invert = on,
                None => bad = Some((-224, "Illegal parameter value")),
            },
            ("CHAN:INV", true) => answer = Some(u8::from(channel.invert).to_string()),
            ("CHAN:DIGF:STAT", false) => match on_off(argument) {
                Some(on) => channel.filter = on,
                None => bad = Some((-224, "Illegal parameter value")),
            },
            ("CHAN:DIGF:STAT", true) => answer = Some(u8::from(channel.filter).to_string()),
            ("CHAN:DIGF:CUT", false) => match number(argument) {
                Some(cutoff) if (1e5..=2e9).contains(&cutoff) => {
                    self.cutoffs[index / 2] = nearest_cutoff(cutoff);
                }
                _ => bad = Some((-222, "Data out of range")),
            },
            ("CHAN:DIGF:CUT", true) => answer = Some(format_number(self.cutoffs[index / 2])),
            ("CHAN:DATA", true) => {
                if !self.channels[index].on {
                    bad = Some((-221, "Settings conflict"));
                }
                replies.push(Reply::After(Deferred::Waveform(index, self.format)));
            }
            ("CHAN:DATA:HEAD", true) => replies.push(Reply::After(Deferred::Header(index))),
            _ => bad = Some((-113, "Undefined header")),
        }
        if let Some(answer) = answer {
            replies.push(Reply::Line(answer));
        }
        if let Some((code, message)) = bad {
            self.error(code, message, text);
        }
    }

    fn trigger_command(&mut self, command: &Command, replies: &mut Vec<Reply>) {
        let (text, argument) = (command.text, command.argument);
        if command.suffix("TRIG") != 1 {
            // The A trigger is the one with a level per source here.
            return self.error(-114, "Header suffix out of range", text);
        }
        let trigger = &mut self.trigger;
        let mut answer = None;
        let mut bad = false;
        match (command.path().as_str(), command.query) {
            ("TRIG:MODE", false) => match argument.to_ascii_uppercase().as_str() {
                "AUTO" => trigger.mode = TriggerMode::Auto,
                "NORM" | "NORMAL" => trigger.mode = TriggerMode::Normal,
                "FRE" | "FRER" | "FREERUN" => trigger.mode = TriggerMode::FreeRun,
                _ => bad = true,
            },
            ("TRIG:MODE", true) => {
                answer = Some(
                    match trigger.mode {
                        TriggerMode::Auto => "AUTO",
                        TriggerMode::Normal => "NORM",
                        TriggerMode::FreeRun => "FRER",
                    }
                    .to_owned(),
                )
            }
            ("TRIG:SOUR", false) => match source_index(argument) {
                Some(source) => trigger.source = source,
                None => bad = true,
            },
            ("TRIG:SOUR", true) => {
                answer = Some(match trigger.source {
                    4 => "EXT".to_owned(),
                    n => format!("CHAN{}", n + 1),
                })
            }
            ("TRIG:TYPE", false) => {
                if !argument.eq_ignore_ascii_case("EDGE") {
                    bad = true;
                }
            }
            ("TRIG:TYPE", true) => answer = Some("EDGE".into()),
            ("TRIG:LEV", false) => {
                let source = command.suffix("LEV") as usize;
                match number(argument) {
                    Some(level) if (1..=5).contains(&source) && level.abs() <= 50.0 => {
                        trigger.levels[source - 1] = level;
                    }
                    _ => return self.error(-222, "Data out of range", text),
                }
            }
            ("TRIG:LEV", true) => {
                let source = (command.suffix("LEV") as usize).clamp(1, 5);
                answer = Some(format_number(trigger.levels[source - 1]));
            }
            ("TRIG:EDGE:SLOP", false) => match argument.to_ascii_uppercase().as_str() {
                "POS" | "POSITIVE" => trigger.slope = "POS",
                "NEG" | "NEGATIVE" => trigger.slope = "NEG",
                "EITH" | "EITHER" => trigger.slope = "EITH",
                _ => bad = true,
            },
            ("TRIG:EDGE:SLOP", true) => answer = Some(trigger.slope.into()),
            _ => return self.error(-113, "Undefined header", text),
        }
        if let Some(answer) = answer {
            replies.push(Reply::Line(answer));
        }
        if bad {
            self.error(-224, "Illegal parameter value", text);
        }
    }

    fn measurement_command(&mut self, command: &Command, replies: &mut Vec<Reply>) {
        let (text, argument) = (command.text, command.argument);
        let index = command.suffix("MEAS") as usize;
        if !(1..=8).contains(&index) {
            return self.error(-114, "Header suffix out of range", text);
        }
        let measurement = &mut self.measurements[index - 1];
        match (command.path().as_str(), command.query) {
            ("MEAS", false) => match on_off(argument) {
                Some(on) => measurement.on = on,
                None => self.error(-224, "Illegal parameter value", text),
            },
            ("MEAS", true) => replies.push(Reply::Line(u8::from(measurement.on).to_string())),
            ("MEAS:SOUR", false) => match waveform_source(argument) {
                Some(source) => measurement.source = source,
                None => self.error(-224, "Illegal parameter value", text),
            },
            ("MEAS:SOUR", true) => {
                replies.push(Reply::Line(format!("C{}W1", measurement.source + 1)));
            }
            ("MEAS:MAIN", false) => {
                let wanted = short_or_long(argument);
                match MEASUREMENTS.iter().find(|kind| **kind == wanted) {
                    Some(kind) => measurement.kind = kind,
                    None => self.error(-224, "Illegal parameter value", text),
                }
            }
            ("MEAS:MAIN", true) => replies.push(Reply::Line(measurement.kind.into())),
            ("MEAS:RES", true) => {
                if !measurement.on {
                    self.error(-221, "Settings conflict", text);
                }
                replies.push(Reply::After(Deferred::Measure(index - 1)));
            }
            _ => self.error(-113, "Undefined header", text),
        }
    }

    fn set_format(&mut self, argument: &str, text: &str) {
        let normalized: String = argument
            .to_ascii_uppercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        self.format = match normalized.as_str() {
            "ASC" | "ASCII" | "ASC,0" | "ASCII,0" => Format::Ascii,
            "REAL" | "REAL,32" => Format::Real32,
            "INT,8" => Format::Int8,
            "INT,16" => Format::Int16,
            _ => return self.error(-224, "Illegal parameter value", text),
        };
    }

    fn record_length(&self) -> usize {
        (self.sample_rate * self.time_scale * 10.0).round().max(2.0) as usize
    }

    /// Sets the sample rate, if the record it makes fits in memory (the
    /// manual's "Data out of range" otherwise).
    fn set_record(&mut self, sample_rate: f64, time_scale: f64, text: &str) {
        if sample_rate * time_scale * 10.0 > MAX_RECORD_LENGTH {
            return self.error(-222, "Data out of range", text);
        }
        self.sample_rate = sample_rate;
        self.time_scale = time_scale;
    }

    /// Sets the time scale; the sample rate comes down if the record
    /// would not fit otherwise (as the scope does).
    fn set_time_scale(&mut self, time_scale: f64) {
        self.time_scale = time_scale;
        self.sample_rate = self
            .sample_rate
            .min(MAX_RECORD_LENGTH / (time_scale * 10.0))
            .max(SAMPLE_RATES.0);
    }

    /// The settings now, as a record to be.
    fn capture(&mut self) -> Capture {
        self.acquisitions += 1;
        let length = self.record_length();
        Capture {
            channels: self.channels.clone(),
            sample_rate: self.sample_rate,
            length,
            start: -(length as f64) / self.sample_rate / 2.0,
            seed: 0x5EED ^ self.acquisitions.wrapping_mul(0x1000_0000_01B3),
        }
    }

    /// Whether the trigger fires on the signal as it is set up.
    fn triggers(&self) -> bool {
        let trigger = &self.trigger;
        if trigger.mode != TriggerMode::Normal {
            return true;
        }
        if trigger.source == 4 {
            // Nothing is plugged into the external input.
            return false;
        }
        let channel = &self.channels[trigger.source];
        let (mut low, mut high) = signal_extent(trigger.source);
        if channel.coupling == Coupling::Ac {
            low -= signal_mean(trigger.source);
            high -= signal_mean(trigger.source);
        }
        if channel.invert {
            (low, high) = (-high, -low);
        }
        let level = trigger.levels[trigger.source];
        low < level && level < high
    }

    fn start(&mut self, continuous: bool, now: Instant) {
        let capture = self.capture();
        let record =
            Duration::from_secs_f64((capture.length as f64 / capture.sample_rate).min(60.0));
        let until = self.triggers().then(|| {
            now + record + PROCESSING_PER_SAMPLE * capture.length.min(u32::MAX as usize) as u32
        });
        self.running = Some(Running {
            until,
            capture,
            continuous,
        });
    }

    fn stop(&mut self, now: Instant) {
        if let Some(running) = self.running.take()
            && running.until.is_some_and(|until| until <= now)
        {
            self.last = Some(running.capture);
        }
    }

    /// Moves a finished acquisition into `last`; whether one still runs
    /// (and holds back the replies that wait for it).
    fn acquiring(&mut self, now: Instant) -> bool {
        let Some(running) = self.running.as_ref() else {
            return false;
        };
        match running.until {
            Some(until) if until <= now => {
                let running = self.running.take().expect("checked above");
                self.last = Some(running.capture);
                if running.continuous {
                    self.start(true, now);
                    // A continuous acquisition holds nothing back.
                    return false;
                }
                false
            }
            _ => !running.continuous,
        }
    }

    /// The last record, or one taken now (the scope, running, always has
    /// one).
    fn record(&mut self) -> Capture {
        if self.last.is_none() {
            self.last = Some(self.capture());
        }
        self.last.clone().expect("set above")
    }

    fn render(&mut self, deferred: Deferred) -> Reply {
        match deferred {
            Deferred::Complete => Reply::Line("1".into()),
            Deferred::Header(channel) => {
                let record = self.record();
                let _ = channel;
                let stop = record.start + record.length as f64 / record.sample_rate;
                Reply::Line(format!(
                    "{},{},{},1",
                    format_number(record.start),
                    format_number(stop),
                    record.length
                ))
            }
            Deferred::Waveform(channel, format) => {
                let record = self.record();
                let key = (record.seed, channel, format, self.little_endian);
                if let Some((made, data)) = &self.made
                    && *made == key
                {
                    return Reply::Block(Arc::clone(data));
                }
                let volts = record.volts(channel);
                let reply = waveform(&record, channel, &volts, format, self.little_endian);
                if let Reply::Block(data) = &reply {
                    self.made = Some((key, Arc::clone(data)));
                }
                reply
            }
            Deferred::Measure(index) => {
                let measurement = self.measurements[index];
                let record = self.record();
                let volts = record.volts(measurement.source);
                Reply::Line(format_number(measure(measurement.kind, &volts)))
            }
        }
    }

    /// A picture of the screen: the grid and each channel's trace.
    fn screenshot(&mut self) -> Vec<u8> {
        const WIDTH: usize = 800;
        const HEIGHT: usize = 480;
        const COLORS: [[u8; 3]; 4] = [[255, 220, 0], [0, 200, 80], [255, 120, 0], [60, 140, 255]];
        let mut pixels = vec![[16u8, 16, 16]; WIDTH * HEIGHT];
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                if x % (WIDTH / 10) == 0 || y % (HEIGHT / 10) == 0 {
                    pixels[y * WIDTH + x] = [70, 70, 70];
                }
            }
        }
        let record = self.record();
        for (channel, color) in COLORS.iter().enumerate() {
            if !record.channels[channel].on {
                continue;
            }
            let settings = &record.channels[channel];
            let volts = Capture {
                length: record.length.min(20_000),
                sample_rate: record.sample_rate * record.length.min(20_000) as f64
                    / record.length as f64,
                ..record.clone()
            }
            .volts(channel);
            for (i, v) in volts.iter().enumerate() {
                let x = i * (WIDTH - 1) / volts.len().max(2).saturating_sub(1).max(1);
                let divisions =
                    (f64::from(*v) - settings.offset) / (settings.range / 10.0) + settings.position;
                let y = ((5.0 - divisions) / 10.0 * (HEIGHT as f64 - 1.0)).round();
                if (0.0..HEIGHT as f64).contains(&y) {
                    pixels[y as usize * WIDTH + x.min(WIDTH - 1)] = *color;
                }
            }
        }
        match self.hardcopy_language {
            "BMP" => bmp(WIDTH, HEIGHT, &pixels),
            _ => png(WIDTH, HEIGHT, &pixels),
        }
    }
}

/// The offset the channel's range allows (the manual's tables).
fn offset_limit(channel: &Channel) -> f64 {
    let per_division = channel.range / 10.0;
    if channel.coupling == Coupling::Dc {
        match per_division {
            d if d > 0.316 => 10.0,
            d if d > 0.1 => 3.0,
            _ => 1.0,
        }
    } else {
        match per_division {
            d if d > 3.16 => 115.0 - channel.range / 2.0,
            d if d > 1.0 => 100.0,
            d if d > 0.316 => 11.5 - channel.range / 2.0,
            d if d > 0.1 => 10.0,
            d if d > 0.0316 => 1.15 - channel.range / 2.0,
            _ => 1.0,
        }
    }
}

fn nearest_cutoff(cutoff: f64) -> f64 {
    CUTOFFS
        .iter()
        .copied()
        .min_by(|a, b| (a - cutoff).abs().total_cmp(&(b - cutoff).abs()))
        .expect("a list of cutoffs")
}

/// `CHAN2` → 1; `EXT` → 4.
fn source_index(argument: &str) -> Option<usize> {
    let upper = argument.trim().to_ascii_uppercase();
    if upper == "EXT" || upper == "EXTERNANALOG" || upper == "EXTA" {
        return Some(4);
    }
    let (name, number) = node(&upper)?;
    (name == "CHAN")
        .then_some(number.unwrap_or(1) as usize)
        .filter(|n| (1..=4).contains(n))
        .map(|n| n - 1)
}

/// `C2W1` → 1.
fn waveform_source(argument: &str) -> Option<usize> {
    let upper = argument.trim().to_ascii_uppercase();
    let rest = upper.strip_prefix('C')?;
    let (channel, waveform) = rest.split_once('W').unwrap_or((rest, "1"));
    let channel: usize = channel.parse().ok()?;
    (waveform == "1" && (1..=4).contains(&channel)).then_some(channel - 1)
}

/// `AMPLitude` and `AMPL` → `AMPL`.
fn short_or_long(argument: &str) -> String {
    let upper = argument.trim().to_ascii_uppercase();
    match upper.as_str() {
        "MAXIMUM" => "MAX".into(),
        "MINIMUM" => "MIN".into(),
        "AMPLITUDE" => "AMPL".into(),
        "PDELTA" => "PDEL".into(),
        _ => upper,
    }
}

fn measure(kind: &str, volts: &[f32]) -> f64 {
    if volts.is_empty() {
        return f64::NAN;
    }
    let max = volts.iter().copied().fold(f32::MIN, f32::max) as f64;
    let min = volts.iter().copied().fold(f32::MAX, f32::min) as f64;
    let mean = volts.iter().map(|v| f64::from(*v)).sum::<f64>() / volts.len() as f64;
    // High and low: the means of the samples above and below the middle.
    let middle = (max + min) / 2.0;
    let side_mean = |above: bool| {
        let side: Vec<f64> = volts
            .iter()
            .map(|v| f64::from(*v))
            .filter(|v| (*v >= middle) == above)
            .collect();
        side.iter().sum::<f64>() / side.len().max(1) as f64
    };
    match kind {
        "MAX" => max,
        "MIN" => min,
        "PDEL" => max - min,
        "MEAN" => mean,
        "RMS" => {
            (volts.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / volts.len() as f64).sqrt()
        }
        "HIGH" => side_mean(true),
        "LOW" => side_mean(false),
        _ => side_mean(true) - side_mean(false),
    }
}

/// The waveform as the scope sends it in `format`.
fn waveform(
    record: &Capture,
    channel: usize,
    volts: &[f32],
    format: Format,
    little: bool,
) -> Reply {
    let data = match format {
        Format::Ascii => {
            let mut text = String::with_capacity(volts.len() * 14);
            for (i, v) in volts.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&format!("{v:E}"));
            }
            return Reply::Line(text);
        }
        Format::Real32 => volts
            .iter()
            .flat_map(|v| {
                if little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                }
            })
            .collect(),
        Format::Int8 => record
            .codes(channel, volts, 8)
            .into_iter()
            .map(|code| code as i8 as u8)
            .collect(),
        Format::Int16 => record
            .codes(channel, volts, 16)
            .into_iter()
            .flat_map(|code| {
                let code = code as i16;
                if little {
                    code.to_le_bytes()
                } else {
                    code.to_be_bytes()
                }
            })
            .collect(),
    };
    Reply::Block(Arc::new(data))
}

/// `'C:\temp\x.png'` → `C:\temp\x.png`.
fn quoted(argument: &str) -> Option<String> {
    let first = argument.split(',').next()?.trim();
    let inner = first
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| first.strip_prefix('"').and_then(|s| s.strip_suffix('"')))?;
    Some(inner.to_owned())
}

/// Splits at the `;`s that are not inside quotes.
fn split_commands(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in line.char_indices() {
        match (c, quote) {
            ('\'' | '"', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            (';', None) => {
                parts.push(&line[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&line[start..]);
    parts
}

/// An uncompressed PNG (deflate's stored blocks): valid for any reader,
/// with no compressor to depend on.
fn png(width: usize, height: usize, pixels: &[[u8; 3]]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(height * (width * 3 + 1));
    for row in pixels.chunks(width) {
        raw.push(0);
        raw.extend(row.iter().flatten());
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend(len.to_le_bytes());
        zlib.extend((!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend(adler32(&raw).to_be_bytes());
    let mut header = Vec::new();
    header.extend((width as u32).to_be_bytes());
    header.extend((height as u32).to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &header), (b"IDAT", &zlib), (b"IEND", &Vec::new())] {
        png.extend((data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend(crc.to_be_bytes());
    }
    png
}

fn bmp(width: usize, height: usize, pixels: &[[u8; 3]]) -> Vec<u8> {
    let row = (width * 3).div_ceil(4) * 4;
    let size = 54 + row * height;
    let mut bmp = b"BM".to_vec();
    for value in [size as u32, 0, 54, 40, width as u32, height as u32] {
        bmp.extend(value.to_le_bytes());
    }
    bmp.extend(1u16.to_le_bytes());
    bmp.extend(24u16.to_le_bytes());
    for value in [0u32, (row * height) as u32, 2835, 2835, 0, 0] {
        bmp.extend(value.to_le_bytes());
    }
    for line in pixels.chunks(width).rev() {
        let start = bmp.len();
        for [r, g, b] in line {
            bmp.extend([*b, *g, *r]);
        }
        bmp.resize(start + row, 0);
    }
    bmp
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= 65_521;
        b %= 65_521;
    }
    (b << 16) | a
}

/// A running simulator; stops accepting when dropped.
pub struct Simulator {
    port: u16,
    /// How it misbehaves.
    pub faults: Arc<Faults>,
    stop: Arc<AtomicBool>,
}

impl Simulator {
    /// Serves a fresh RTO on a free port of `host`.
    pub fn start(host: &str) -> std::io::Result<Simulator> {
        Simulator::start_on(host, 0)
    }

    /// Serves a fresh RTO on `host:port` (0: a free port).
    pub fn start_on(host: &str, port: u16) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind((host, port))?;
        let port = listener.local_addr()?.port();
        let faults = Arc::new(Faults::default());
        let stop = Arc::new(AtomicBool::new(false));
        let scope = Arc::new(Mutex::new(Scope::default()));
        {
            let (faults, stop) = (Arc::clone(&faults), Arc::clone(&stop));
            thread::Builder::new()
                .name("rto-simulator".to_owned())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let (faults, scope, stop) =
                            (Arc::clone(&faults), Arc::clone(&scope), Arc::clone(&stop));
                        thread::spawn(move || Connection::new(stream, scope, faults, stop).serve());
                    }
                })?;
        }
        Ok(Simulator { port, faults, stop })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its VISA resource string.
    pub fn resource(&self) -> String {
        format!("TCPIP0::127.0.0.1::{}::SOCKET", self.port)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The longest command line it takes (a longer one is dropped, with
/// `-363,"Input buffer overrun"`).
const MAX_LINE: usize = 64 * 1024;

/// One client's connection: its input, and its replies in order (those
/// that wait for an acquisition hold back the ones after them).
struct Connection {
    stream: TcpStream,
    scope: Arc<Mutex<Scope>>,
    faults: Arc<Faults>,
    stop: Arc<AtomicBool>,
    input: Vec<u8>,
    queue: VecDeque<Reply>,
}

impl Connection {
    fn new(
        stream: TcpStream,
        scope: Arc<Mutex<Scope>>,
        faults: Arc<Faults>,
        stop: Arc<AtomicBool>,
    ) -> Connection {
        Connection {
            stream,
            scope,
            faults,
            stop,
            input: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    fn scope(&self) -> std::sync::MutexGuard<'_, Scope> {
        self.scope.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(mut self) {
        let _ = self.stream.set_nodelay(true);
        // Short reads, so held replies go out soon after their acquisition.
        let _ = self.stream.set_read_timeout(Some(Duration::from_millis(5)));
        let mut buffer = [0u8; 8192];
        while !self.stop.load(Ordering::SeqCst) {
            match self.stream.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => self.input.extend_from_slice(&buffer[..n]),
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
            self.take_lines();
            if self.send_ready().is_err() {
                return;
            }
        }
    }

    fn take_lines(&mut self) {
        while let Some(end) = self.input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.input.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let replies = self.scope().line(line, Instant::now());
            if !self.faults.mute.load(Ordering::SeqCst) {
                self.queue.extend(replies);
            }
        }
        if self.input.len() > MAX_LINE {
            self.input.clear();
            self.scope()
                .error(-363, "Input buffer overrun", "(a line without its end)");
        }
    }

    /// Sends the replies whose turn it is.
    fn send_ready(&mut self) -> std::io::Result<()> {
        while let Some(front) = self.queue.front() {
            let now = Instant::now();
            if matches!(front, Reply::After(_)) && self.scope().acquiring(now) {
                return Ok(());
            }
            let reply = match self.queue.pop_front().expect("a front") {
                Reply::After(deferred) => self.scope().render(deferred),
                ready => ready,
            };
            self.send(reply)?;
        }
        Ok(())
    }

    fn send(&mut self, reply: Reply) -> std::io::Result<()> {
        if self.faults.garble.load(Ordering::SeqCst) {
            return self.stream.write_all(&[0x15, 0xFE, 0x80, b'\n']);
        }
        let bytes = match reply {
            Reply::Line(text) => {
                let mut bytes = text.into_bytes();
                bytes.push(b'\n');
                bytes
            }
            Reply::Block(data) => {
                let head = format!("#{}{}", data.len().to_string().len(), data.len());
                self.stream.write_all(head.as_bytes())?;
                if self.faults.drop_mid_transfer.swap(false, Ordering::SeqCst) {
                    let _ = self.stream.write_all(&data[..data.len() / 2]);
                    let _ = self.stream.shutdown(std::net::Shutdown::Both);
                    return Err(ErrorKind::ConnectionAborted.into());
                }
                self.stream.write_all(&data)?;
                b"\n".to_vec()
            }
            Reply::After(_) => unreachable!("rendered before sending"),
        };
        self.stream.write_all(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scope: &mut Scope, line: &str) -> Vec<String> {
        let now = Instant::now();
        scope
            .line(line, now)
            .into_iter()
            .map(|reply| match reply {
                Reply::Line(text) => text,
                Reply::Block(data) => format!("<{} bytes>", data.len()),
                Reply::After(deferred) => match scope.render(deferred) {
                    Reply::Line(text) => text,
                    Reply::Block(data) => format!("<{} bytes>", data.len()),
                    Reply::After(_) => unreachable!(),
                },
            })
            .collect()
    }

    #[test]
    fn commands_after_a_semicolon_continue_the_previous_path() {
        let mut scope = Scope::default();
        run(
            &mut scope,
            "CHAN2:STAT ON; COUP DC;RANG 2;POS 1;OFFS 0.5; INV ON",
        );
        assert_eq!(
            run(&mut scope, "CHAN2:STAT?;COUP?;RANG?;POS?;OFFS?;INV?"),
            ["1", "DC", "2E0", "1E0", "5E-1", "1"]
        );
        run(
            &mut scope,
            "TRIG1:MODE NORM;SOUR CHAN2;TYPE EDGE;LEV2 0.05;EDGE:SLOP NEG",
        );
        assert_eq!(
            run(&mut scope, "TRIGGER1:MODE?;:TRIG:SOUR?;LEV2?;EDGE:SLOP?"),
            ["NORM", "CHAN2", "5E-2", "NEG"]
        );
        assert_eq!(run(&mut scope, "SYST:ERR?"), ["0,\"No error\""]);
    }

    #[test]
    fn a_record_over_the_memory_is_refused_with_the_manual_s_error() {
        let mut scope = Scope::default();
        run(&mut scope, "ACQ:POIN:AUTO RES;:TIM:RANG 1;:ACQ:SRAT 10e9");
        assert_eq!(
            run(&mut scope, "SYST:ERR?"),
            ["-222,\"Data out of range;ACQ:SRAT 10e9\""]
        );
        run(
            &mut scope,
            "ACQ:POIN:AUTO RES;:TIM:RANG 1e-3;:ACQ:SRAT 10e9",
        );
        assert_eq!(run(&mut scope, "ACQ:POIN?"), ["10000000"]);
        run(&mut scope, "CHAN9:STAT ON");
        run(&mut scope, "CHAN1:NOTHING 1");
        assert_eq!(
            run(&mut scope, "SYST:ERR?;:SYST:ERR?"),
            [
                "-114,\"Header suffix out of range;CHAN9:STAT ON\"",
                "-113,\"Undefined header;CHAN1:NOTHING 1\""
            ]
        );
    }

    #[test]
    fn waveforms_come_in_each_format_and_measurements_match_them() {
        let mut scope = Scope::default();
        run(&mut scope, "TIM:SCAL 1e-6;:ACQ:SRAT 1e9");
        run(&mut scope, "SING");
        assert_eq!(
            run(&mut scope, "FORM INT,8;:CHAN1:DATA?"),
            ["<10000 bytes>"]
        );
        assert_eq!(
            run(&mut scope, "FORM INT,16;:CHAN1:DATA?"),
            ["<20000 bytes>"]
        );
        assert_eq!(
            run(&mut scope, "FORM REAL,32;:CHAN1:DATA?"),
            ["<40000 bytes>"]
        );
        let ascii = run(&mut scope, "FORM ASC;:CHAN1:DATA?").remove(0);
        let values: Vec<f64> = ascii.split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(values.len(), 10_000);
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        assert!((max - 0.2).abs() < 0.01, "{max}");
        run(&mut scope, "MEAS1:SOUR C1W1;MAIN MAX;:MEAS1 ON");
        let measured: f64 = run(&mut scope, "MEAS1:RES:ACT?")[0].parse().unwrap();
        assert!((measured - max).abs() < 1e-6, "{measured} {max}");
        assert_eq!(run(&mut scope, "CHAN1:DATA:HEAD?"), ["-5E-6,5E-6,10000,1"]);
    }

    #[test]
    fn a_normal_trigger_the_signal_never_reaches_holds_the_acquisition() {
        let mut scope = Scope::default();
        let now = Instant::now();
        scope.line("TRIG1:MODE NORM;SOUR CHAN1;LEV1 0.5", now);
        scope.line("SING", now);
        assert!(scope.acquiring(now + Duration::from_secs(3600)));
        scope.line("STOP", now);
        assert!(!scope.acquiring(now));
        scope.line("TRIG1:LEV1 0.1;:SING", now);
        assert!(scope.acquiring(now));
        assert!(!scope.acquiring(now + Duration::from_secs(1)));
    }

    #[test]
    fn a_screenshot_is_a_png_in_the_instrument_s_files() {
        let mut scope = Scope::default();
        run(
            &mut scope,
            "HCOP:DEV:LANG PNG;:MMEM:NAME 'C:\\temp\\Last_Screenshot.png';:HCOP:IMM",
        );
        let image = scope.files["c:\\temp\\last_screenshot.png"].clone();
        assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(
            run(&mut scope, "MMEM:DATA? 'C:\\temp\\Last_Screenshot.png'"),
            [format!("<{} bytes>", image.len())]
        );
    }
}
