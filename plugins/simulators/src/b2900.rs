//! A simulated Keysight B2900 source-measure unit, from its SCPI command
//! reference (the commands PyroLab's driver sends): two channels, each
//! sourcing voltage or current into a resistor and measuring the other,
//! clamped at its compliance; staircase sweeps; the error queue; the
//! display's color set; screenshots as a binary block.
//!
//! It serves a TCP socket as the instrument's port 5025 does
//! (`TCPIP0::HOST::PORT::SOCKET`), one client at a time, and can be told to
//! misbehave ([`Faults`]): stop answering, answer garbage, or drop the
//! connection in the middle of a binary transfer.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// The load on each channel's output, in ohms.
pub const LOAD_OHMS: f64 = 1000.0;
/// The largest voltage a B2900 sources, in volts.
pub const MAX_VOLTAGE: f64 = 210.0;
/// The largest current, in amperes.
pub const MAX_CURRENT: f64 = 3.03;
/// The most points of a sweep.
pub const MAX_POINTS: usize = 2500;

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
enum Source {
    Voltage,
    Current,
}

#[derive(Clone, Debug)]
struct Channel {
    source: Source,
    level: f64,
    current_limit: f64,
    voltage_limit: f64,
    sweep: bool,
    start: f64,
    stop: f64,
    points: usize,
    measured: Vec<f64>,
}

impl Default for Channel {
    fn default() -> Self {
        Channel {
            source: Source::Voltage,
            level: 0.0,
            current_limit: 0.1,
            voltage_limit: 2.0,
            sweep: false,
            start: 0.0,
            stop: 0.0,
            points: 1,
            measured: Vec::new(),
        }
    }
}

impl Channel {
    /// What it measures at source level `level`: the current through the
    /// load at a voltage, the voltage across it at a current, each held
    /// at the compliance.
    fn measure(&self, level: f64) -> f64 {
        match self.source {
            Source::Voltage => (level / LOAD_OHMS).clamp(-self.current_limit, self.current_limit),
            Source::Current => (level * LOAD_OHMS).clamp(-self.voltage_limit, self.voltage_limit),
        }
    }
}

/// The instrument's state.
struct Instrument {
    channels: [Channel; 2],
    output: bool,
    log_sweep: bool,
    errors: Vec<String>,
    color_set: u8,
    screenshot_format: String,
}

impl Default for Instrument {
    fn default() -> Self {
        Instrument {
            channels: [Channel::default(), Channel::default()],
            output: false,
            log_sweep: false,
            errors: Vec::new(),
            color_set: 1,
            screenshot_format: "PNG".to_owned(),
        }
    }
}

/// A reply: a line, or a binary block.
enum Reply {
    Line(String),
    Block(Vec<u8>),
}

impl Instrument {
    fn error(&mut self, entry: &str) {
        if self.errors.len() < 30 {
            self.errors.push(entry.to_owned());
        }
    }

    /// Runs one command line (commands separated by `;`).
    fn line(&mut self, line: &str) -> Vec<Reply> {
        line.split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .filter_map(|command| self.command(command))
            .collect()
    }

    fn command(&mut self, command: &str) -> Option<Reply> {
        let (header, argument) = match command.split_once(char::is_whitespace) {
            Some((header, argument)) => (header.to_ascii_uppercase(), argument.trim().to_owned()),
            None => (command.to_ascii_uppercase(), String::new()),
        };
        let number = || argument.parse::<f64>().ok();
        let (base, channel) = channel_of(&header);
        let ch = channel.min(1);
        match (base.as_str(), argument.as_str()) {
            ("*IDN?", _) => {
                return Some(Reply::Line(
                    "Keysight Technologies,B2902B,MY00000042,5.2.2104.3 (simulated)".to_owned(),
                ));
            }
            ("*RST", _) => {
                let errors = std::mem::take(&mut self.errors);
                *self = Instrument {
                    errors,
                    ..Instrument::default()
                };
            }
            ("*CLS", _) => self.errors.clear(),
            ("*OPC?", _) => return Some(Reply::Line("1".to_owned())),
            (":SYST:ERR?", _) | ("SYST:ERR?", _) => {
                let entry = if self.errors.is_empty() {
                    "+0,\"No error\"".to_owned()
                } else {
                    self.errors.remove(0)
                };
                return Some(Reply::Line(entry));
            }
            (":DISP:ENAB", "ON" | "OFF" | "1" | "0") => {}
            (":DISP:CSET?", _) => return Some(Reply::Line(self.color_set.to_string())),
            (":DISP:CSET", "1" | "2") => self.color_set = argument.parse().unwrap_or(1),
            (":SOUR:FUNC:MODE", "VOLT") => self.channels[ch].source = Source::Voltage,
            (":SOUR:FUNC:MODE", "CURR") => self.channels[ch].source = Source::Current,
            (":SOUR:VOLT" | ":SOUR:CURR", _) => {
                let max = if base == ":SOUR:VOLT" {
                    MAX_VOLTAGE
                } else {
                    MAX_CURRENT
                };
                match number().filter(|v| v.abs() <= max) {
                    Some(level) => self.channels[ch].level = level,
                    None => self.error("-222,\"Data out of range\""),
                }
            }
            (":SOUR:VOLT:MODE" | ":SOUR:CURR:MODE", "SWE") => self.channels[ch].sweep = true,
            (":SOUR:VOLT:MODE" | ":SOUR:CURR:MODE", "FIX") => self.channels[ch].sweep = false,
            (":SOUR:SWE:SPAC", "LIN") => self.log_sweep = false,
            (":SOUR:SWE:SPAC", "LOG") => self.log_sweep = true,
            (":SOUR:VOLT:STAR" | ":SOUR:CURR:STAR", _) => match number() {
                Some(v) => self.channels[ch].start = v,
                None => self.error("-104,\"Data type error\""),
            },
            (":SOUR:VOLT:STOP" | ":SOUR:CURR:STOP", _) => match number() {
                Some(v) => self.channels[ch].stop = v,
                None => self.error("-104,\"Data type error\""),
            },
            (":SOUR:VOLT:POIN" | ":SOUR:CURR:POIN", _) => {
                match argument
                    .parse::<usize>()
                    .ok()
                    .filter(|p| (1..=MAX_POINTS).contains(p))
                {
                    Some(points) => self.channels[ch].points = points,
                    None => self.error("-222,\"Data out of range\""),
                }
            }
            (":SENS:FUNC", "\"CURR\"" | "\"VOLT\"") => {}
            (":SENS:CURR:PROT", _) => match number().filter(|v| *v > 0.0 && *v <= MAX_CURRENT) {
                Some(v) => self.channels[ch].current_limit = v,
                None => self.error("-222,\"Data out of range\""),
            },
            (":SENS:VOLT:PROT", _) => match number().filter(|v| *v > 0.0 && *v <= MAX_VOLTAGE) {
                Some(v) => self.channels[ch].voltage_limit = v,
                None => self.error("-222,\"Data out of range\""),
            },
            (":SENS:CURR:RANG:AUTO" | ":SENS:VOLT:RANG:AUTO", "ON" | "OFF") => {}
            (":SENS:CURR:NPLC" | ":SENS:VOLT:NPLC" | ":SENS:CURR:APER" | ":SENS:VOLT:APER", _)
                if number().is_some_and(|v| v > 0.0) => {}
            (":TRIG:SOUR", "AINT" | "BUS" | "TIM") => {}
            (":TRIG:COUN", _) if argument.parse::<usize>().is_ok() => {}
            (":OUTP", "ON" | "1") => self.output = true,
            (":OUTP", "OFF" | "0") => self.output = false,
            (":INIT", _) => {
                let ch = list_channel(&argument);
                self.sweep(ch);
            }
            (":MEAS:CURR?" | ":MEAS:VOLT?", _) => {
                let ch = list_channel(&argument);
                let channel = &self.channels[ch];
                let value = if self.output {
                    channel.measure(channel.level)
                } else {
                    0.0
                };
                return Some(Reply::Line(format!("{value:+.6E}")));
            }
            (":FETC:ARR:CURR?" | ":FETC:ARR:VOLT?", _) => {
                let ch = list_channel(&argument);
                let values: Vec<String> = self.channels[ch]
                    .measured
                    .iter()
                    .map(|v| format!("{v:+.6E}"))
                    .collect();
                return Some(Reply::Line(values.join(",")));
            }
            ("HCOP:SDUM:FORM", "PNG" | "JPG" | "BMP" | "WMF") => self.screenshot_format = argument,
            ("HCOP:SDUM:DATA?", _) => return Some(Reply::Block(self.screenshot())),
            _ => self.error("-113,\"Undefined header\""),
        }
        None
    }

    /// Runs channel `ch`'s sweep (with the output on, as the real one
    /// needs): each point's measurement, kept for `:FETC:ARR`.
    fn sweep(&mut self, ch: usize) {
        let log = self.log_sweep;
        let output = self.output;
        let channel = &mut self.channels[ch];
        let points = channel.points.max(1);
        let levels: Vec<f64> = (0..points)
            .map(|i| {
                let t = if points == 1 {
                    0.0
                } else {
                    i as f64 / (points - 1) as f64
                };
                if log && channel.start > 0.0 && channel.stop > 0.0 {
                    channel.start * (channel.stop / channel.start).powf(t)
                } else {
                    channel.start + (channel.stop - channel.start) * t
                }
            })
            .collect();
        channel.measured = levels
            .into_iter()
            .map(|level| if output { channel.measure(level) } else { 0.0 })
            .collect();
    }

    /// A screenshot: an image's first bytes, then filler, about 300 kB.
    fn screenshot(&self) -> Vec<u8> {
        let mut image = match self.screenshot_format.as_str() {
            "PNG" => b"\x89PNG\r\n\x1a\n".to_vec(),
            "JPG" => vec![0xFF, 0xD8, 0xFF],
            "BMP" => b"BM".to_vec(),
            _ => b"\xD7\xCD\xC6\x9A".to_vec(),
        };
        image.extend((0..300_000u32).map(|i| (i % 253) as u8));
        image
    }
}

/// `:SOUR2:VOLT` → (`:SOUR:VOLT`, 1): the channel digit out of the
/// header, 0-based (none is channel 1).
fn channel_of(header: &str) -> (String, usize) {
    let mut base = String::with_capacity(header.len());
    let mut channel = 0;
    let mut chars = header.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit()
            && base.ends_with(|p: char| p.is_ascii_alphabetic())
            && chars.peek().is_none_or(|n| *n == ':')
        {
            channel = c.to_digit(10).unwrap_or(1).saturating_sub(1) as usize;
            continue;
        }
        base.push(c);
    }
    (base, channel)
}

/// `(@2)` → 1.
fn list_channel(argument: &str) -> usize {
    if argument.contains("@2") { 1 } else { 0 }
}

/// A running simulator; stops accepting when dropped.
pub struct Simulator {
    port: u16,
    /// How it misbehaves.
    pub faults: Arc<Faults>,
    stop: Arc<AtomicBool>,
}

impl Simulator {
    /// Serves a fresh B2900 on a free port of `host`.
    pub fn start(host: &str) -> std::io::Result<Simulator> {
        Simulator::start_on(host, 0)
    }

    /// Serves a fresh B2900 on `host:port` (0: a free port).
    pub fn start_on(host: &str, port: u16) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind((host, port))?;
        let port = listener.local_addr()?.port();
        let faults = Arc::new(Faults::default());
        let stop = Arc::new(AtomicBool::new(false));
        let instrument = Arc::new(Mutex::new(Instrument::default()));
        {
            let (faults, stop) = (Arc::clone(&faults), Arc::clone(&stop));
            thread::Builder::new()
                .name("b2900-simulator".to_owned())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let (faults, instrument) = (Arc::clone(&faults), Arc::clone(&instrument));
                        thread::spawn(move || serve(stream, &instrument, &faults));
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

fn serve(stream: TcpStream, instrument: &Mutex<Instrument>, faults: &Faults) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        let replies = instrument
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .line(&line);
        if faults.mute.load(Ordering::SeqCst) {
            continue;
        }
        for reply in replies {
            let bytes = match reply {
                _ if faults.garble.load(Ordering::SeqCst) => vec![0x15, 0xFE, 0x80, b'\n'],
                Reply::Line(text) => format!("{text}\n").into_bytes(),
                Reply::Block(data) => {
                    let mut block =
                        format!("#{}{}", data.len().to_string().len(), data.len()).into_bytes();
                    block.extend_from_slice(&data);
                    block.push(b'\n');
                    if faults.drop_mid_transfer.swap(false, Ordering::SeqCst) {
                        let _ = out.write_all(&block[..block.len() / 2]);
                        return;
                    }
                    block
                }
            };
            if out.write_all(&bytes).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(instrument: &mut Instrument, line: &str) -> Vec<String> {
        instrument
            .line(line)
            .into_iter()
            .map(|reply| match reply {
                Reply::Line(text) => text,
                Reply::Block(data) => format!("<{} bytes>", data.len()),
            })
            .collect()
    }

    #[test]
    fn headers_take_their_channel_digit_out() {
        assert_eq!(channel_of(":SOUR2:VOLT"), (":SOUR:VOLT".to_owned(), 1));
        assert_eq!(channel_of(":SOUR:VOLT"), (":SOUR:VOLT".to_owned(), 0));
        assert_eq!(
            channel_of(":SENS1:CURR:PROT"),
            (":SENS:CURR:PROT".to_owned(), 0)
        );
        assert_eq!(channel_of("*IDN?"), ("*IDN?".to_owned(), 0));
    }

    #[test]
    fn it_measures_its_load_at_the_compliance_and_sweeps() {
        let mut smu = Instrument::default();
        run(&mut smu, "*RST;*CLS");
        run(&mut smu, ":SOUR:FUNC:MODE VOLT");
        run(&mut smu, ":SOUR:VOLT 2");
        run(&mut smu, ":SENS:CURR:PROT 0.001");
        run(&mut smu, ":OUTP ON");
        assert_eq!(run(&mut smu, ":MEAS:CURR? (@1)"), ["+1.000000E-3"]);
        run(&mut smu, ":SOUR:VOLT:MODE SWE");
        run(&mut smu, ":SOUR:VOLT:STAR 0");
        run(&mut smu, ":SOUR:VOLT:STOP 1");
        run(&mut smu, ":SOUR:VOLT:POIN 3");
        run(&mut smu, ":INIT (@1)");
        assert_eq!(
            run(&mut smu, ":FETC:ARR:CURR? (@1)"),
            ["+0.000000E0,+5.000000E-4,+1.000000E-3"]
        );
        run(&mut smu, ":SOUR:VOLT 500");
        run(&mut smu, ":NONSENSE");
        assert_eq!(run(&mut smu, "SYST:ERR?"), ["-222,\"Data out of range\""]);
        assert_eq!(run(&mut smu, "SYST:ERR?"), ["-113,\"Undefined header\""]);
        assert_eq!(run(&mut smu, "SYST:ERR?"), ["+0,\"No error\""]);
    }
}
