//! A simulated Rohde & Schwarz SMCV100B vector signal generator, from its
//! SCPI reference (the commands PyroLab's driver sends): frequency, level,
//! offsets, phase, level and frequency sweeps that run for their points
//! times their dwell, user steps, AM and FM basics, the RF output, and the
//! error queue. It speaks VXI-11, as the instrument's `inst0` does
//! (instrument-io's server), and can be told to misbehave.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use instrument_io::vxi11::server::{Device, Server};

/// How it misbehaves, set from outside while it runs.
#[derive(Default)]
pub struct Faults {
    /// It takes commands and answers nothing.
    pub mute: AtomicBool,
    /// It answers queries with bytes that are not a reply.
    pub garble: AtomicBool,
}

struct Sweep {
    start: f64,
    stop: f64,
    step: f64,
    dwell: f64,
    log: bool,
    started: Option<Instant>,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            start: 0.0,
            stop: 0.0,
            step: 1.0,
            dwell: 0.01,
            log: false,
            started: None,
        }
    }
}

impl Sweep {
    fn points(&self) -> f64 {
        if self.log && self.start > 0.0 && self.step > 0.0 {
            ((self.stop / self.start).ln() / (1.0 + self.step / 100.0).ln())
                .abs()
                .floor()
                + 1.0
        } else if self.step > 0.0 {
            ((self.stop - self.start) / self.step).abs().floor() + 1.0
        } else {
            1.0
        }
    }

    fn running(&self) -> bool {
        self.started.is_some_and(|at| {
            at.elapsed() < Duration::from_secs_f64((self.points() * self.dwell).min(3600.0))
        })
    }
}

/// The generator's state.
struct Generator {
    faults: Arc<Faults>,
    output: Vec<u8>,
    errors: Vec<String>,
    rf_on: bool,
    frequency: f64,
    frequency_offset: f64,
    frequency_step: f64,
    level: f64,
    level_offset: f64,
    level_step: f64,
    phase: f64,
    level_sweep: Sweep,
    frequency_sweep: Sweep,
    am: (bool, f64),
    fm: (bool, f64),
}

impl Generator {
    fn new(faults: Arc<Faults>) -> Generator {
        Generator {
            faults,
            output: Vec::new(),
            errors: Vec::new(),
            rf_on: false,
            frequency: 1e9,
            frequency_offset: 0.0,
            frequency_step: 1e6,
            level: -30.0,
            level_offset: 0.0,
            level_step: 1.0,
            phase: 0.0,
            level_sweep: Sweep::default(),
            frequency_sweep: Sweep::default(),
            am: (false, 30.0),
            fm: (false, 1e3),
        }
    }

    fn error(&mut self, entry: &str) {
        if self.errors.len() < 30 {
            self.errors.push(entry.to_owned());
        }
    }

    fn reply(&mut self, text: String) {
        if self.faults.mute.load(Ordering::SeqCst) {
            return;
        }
        if self.faults.garble.load(Ordering::SeqCst) {
            self.output.extend_from_slice(&[0x07, 0xFF, 0x81, b'\n']);
            return;
        }
        self.output.extend_from_slice(text.as_bytes());
        self.output.push(b'\n');
    }

    /// Sets `slot` to the argument if it parses and lies in `range`.
    fn set(argument: &str, range: std::ops::RangeInclusive<f64>) -> Result<f64, &'static str> {
        match argument.parse::<f64>() {
            Ok(value) if range.contains(&value) => Ok(value),
            Ok(_) => Err("-222,\"Data out of range\""),
            Err(_) => Err("-104,\"Data type error\""),
        }
    }

    fn command(&mut self, command: &str) {
        let (header, argument) = match command.split_once(char::is_whitespace) {
            Some((h, a)) => (h.to_ascii_uppercase(), a.trim().to_ascii_uppercase()),
            None => (command.to_ascii_uppercase(), String::new()),
        };
        let set = |range| Generator::set(&argument, range);
        let result: Result<(), &str> = match (header.as_str(), argument.as_str()) {
            ("*IDN?", _) => {
                self.reply(
                    "Rohde&Schwarz,SMCV100B,1432.7000K02/102030,5.00.122.24 (simulated)".to_owned(),
                );
                Ok(())
            }
            ("*RST", _) => {
                let (faults, errors) = (Arc::clone(&self.faults), std::mem::take(&mut self.errors));
                *self = Generator::new(faults);
                self.errors = errors;
                Ok(())
            }
            ("*CLS", _) => {
                self.errors.clear();
                Ok(())
            }
            ("*OPC?", _) => {
                self.reply("1".to_owned());
                Ok(())
            }
            ("SYST:ERR?" | ":SYST:ERR?", _) => {
                let entry = if self.errors.is_empty() {
                    "0,\"No error\"".to_owned()
                } else {
                    self.errors.remove(0)
                };
                self.reply(entry);
                Ok(())
            }
            (":DISP:UPD", "ON" | "OFF") | ("SYST:SHUT", _) => Ok(()),
            ("OUTP:ALL:STAT", state) => on_off(state).map(|on| self.rf_on = on),
            ("OUTP:STAT?", _) => {
                self.reply(u8::from(self.rf_on).to_string());
                Ok(())
            }
            ("SOUR:POW:LEV:AMPL", "UP") => {
                self.level = (self.level + self.level_step).min(20.0);
                Ok(())
            }
            ("SOUR:POW:LEV:AMPL", "DOWN") => {
                self.level = (self.level - self.level_step).max(-145.0);
                Ok(())
            }
            ("SOUR:POW:LEV:AMPL", _) => set(-145.0..=20.0).map(|v| self.level = v),
            ("SOUR:POW:LEV:AMPL?", _) => {
                self.reply(format!("{}", self.level + self.level_offset));
                Ok(())
            }
            ("SOUR:POW:OFFS", _) => set(-100.0..=100.0).map(|v| self.level_offset = v),
            ("SOUR:POW:STEP", _) => set(0.01..=165.0).map(|v| self.level_step = v),
            ("SOUR:POW:STEP:MODE" | "SOUR:FREQ:STEP:MODE", "USER" | "DEC") => Ok(()),
            ("SOUR:POW:MODE" | "SOUR:FREQ:MODE", "SWE" | "CW" | "FIX") => Ok(()),
            ("SOUR:POW:STAR", _) => set(-145.0..=20.0).map(|v| self.level_sweep.start = v),
            ("SOUR:POW:STOP", _) => set(-145.0..=20.0).map(|v| self.level_sweep.stop = v),
            ("SOUR:SWE:POW:STEP:LOG", _) => set(0.01..=165.0).map(|v| self.level_sweep.step = v),
            ("SOUR:SWE:POW:DWEL1", _) => set(0.001..=100.0).map(|v| self.level_sweep.dwell = v),
            ("TRIG:PSW:SOUR" | "TRIG:FSW:SOUR", "SING" | "AUTO") => Ok(()),
            ("TRIG:PSW:IMM", _) => {
                self.level_sweep.started = Some(Instant::now());
                Ok(())
            }
            ("SOUR:SWE:POW:RUNN?", _) => {
                self.reply(u8::from(self.level_sweep.running()).to_string());
                Ok(())
            }
            ("SOUR:FREQ:FIX", "UP") => {
                self.frequency = (self.frequency + self.frequency_step).min(7.125e9);
                Ok(())
            }
            ("SOUR:FREQ:FIX", "DOWN") => {
                self.frequency = (self.frequency - self.frequency_step).max(4e3);
                Ok(())
            }
            ("SOUR:FREQ:FIX", _) => set(4e3..=7.125e9).map(|v| self.frequency = v),
            ("SOUR:FREQ:FIX?", _) => {
                self.reply(format!("{}", self.frequency + self.frequency_offset));
                Ok(())
            }
            ("SOUR:FREQ:OFFS", _) => set(-67e9..=67e9).map(|v| self.frequency_offset = v),
            ("SOUR:FREQ:STEP", _) => set(0.001..=7.125e9).map(|v| self.frequency_step = v),
            ("SOUR:PHAS", _) => set(-36000.0..=36000.0).map(|v| self.phase = v),
            ("SOUR:FREQ:STAR", _) => set(4e3..=7.125e9).map(|v| self.frequency_sweep.start = v),
            ("SOUR:FREQ:STOP", _) => set(4e3..=7.125e9).map(|v| self.frequency_sweep.stop = v),
            ("SOUR:SWE:FREQ:SPAC", "LOG") => {
                self.frequency_sweep.log = true;
                Ok(())
            }
            ("SOUR:SWE:FREQ:SPAC", "LIN") => {
                self.frequency_sweep.log = false;
                Ok(())
            }
            ("SOUR:SWE:FREQ:STEP:LIN", _) => {
                set(0.001..=7.125e9).map(|v| self.frequency_sweep.step = v)
            }
            ("SOUR:SWE:FREQ:STEP:LOG", _) => {
                set(0.01..=100.0).map(|v| self.frequency_sweep.step = v)
            }
            ("SOUR:SWE:FREQ:DWEL1", _) => {
                set(0.001..=100.0).map(|v| self.frequency_sweep.dwell = v)
            }
            ("TRIG:FSW:IMM", _) => {
                self.frequency_sweep.started = Some(Instant::now());
                Ok(())
            }
            ("SOUR:SWE:FREQ:RUNN?", _) => {
                self.reply(u8::from(self.frequency_sweep.running()).to_string());
                Ok(())
            }
            ("SOUR:SWE:RES:ALL", _) => {
                self.level_sweep.started = None;
                self.frequency_sweep.started = None;
                Ok(())
            }
            ("SOUR:AM:DEPT", _) => set(0.0..=100.0).map(|v| self.am.1 = v),
            ("SOUR:AM:STAT", state) => on_off(state).map(|on| self.am.0 = on),
            ("SOUR:AM:STAT?", _) => {
                self.reply(u8::from(self.am.0).to_string());
                Ok(())
            }
            ("SOUR:FM:DEV", _) => set(0.0..=40e6).map(|v| self.fm.1 = v),
            ("SOUR:FM:STAT", state) => on_off(state).map(|on| self.fm.0 = on),
            _ => Err("-113,\"Undefined header\""),
        };
        if let Err(entry) = result {
            self.error(entry);
        }
    }
}

/// `ON`/`1` or `OFF`/`0`.
fn on_off(state: &str) -> Result<bool, &'static str> {
    match state {
        "ON" | "1" => Ok(true),
        "OFF" | "0" => Ok(false),
        _ => Err("-224,\"Illegal parameter value\""),
    }
}

impl Device for Generator {
    fn message(&mut self, data: &[u8]) {
        let text = String::from_utf8_lossy(data).into_owned();
        for command in text.lines().flat_map(|line| line.split(';')) {
            let command = command.trim();
            if !command.is_empty() {
                self.command(command);
            }
        }
    }

    fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }
}

/// A running simulated SMCV100B on VXI-11; stops when dropped.
pub struct Simulator {
    server: Server,
    host: String,
    /// How it misbehaves.
    pub faults: Arc<Faults>,
}

impl Simulator {
    /// Serves a fresh generator over VXI-11 on `host` (its portmapper and
    /// core channel on free ports).
    pub fn start(host: &str) -> std::io::Result<Simulator> {
        Simulator::start_on(host, 0)
    }

    /// Serves a fresh generator on `host`, its portmapper on
    /// `portmapper_port` (0: a free one).
    pub fn start_on(host: &str, portmapper_port: u16) -> std::io::Result<Simulator> {
        let faults = Arc::new(Faults::default());
        let device: Arc<Mutex<dyn Device>> =
            Arc::new(Mutex::new(Generator::new(Arc::clone(&faults))));
        Ok(Simulator {
            server: Server::start_on(host, portmapper_port, device)?,
            host: host.to_owned(),
            faults,
        })
    }

    /// Its VISA resource.
    pub fn resource(&self) -> String {
        format!("TCPIP0::{}::inst0::INSTR", self.host)
    }

    /// Where its portmapper listens (what a client's `portmapper_port` is).
    pub fn portmapper_port(&self) -> u16 {
        self.server.portmapper_port()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(generator: &mut Generator, line: &str) -> String {
        generator.message(line.as_bytes());
        String::from_utf8(std::mem::take(&mut generator.output)).unwrap()
    }

    #[test]
    fn it_keeps_its_settings_steps_and_sweeps_and_queues_its_errors() {
        let mut sg = Generator::new(Arc::default());
        run(&mut sg, "*RST;*CLS");
        run(&mut sg, "SOUR:FREQ:FIX 2.4e9");
        run(&mut sg, "SOUR:FREQ:STEP 1e6");
        run(&mut sg, "SOUR:FREQ:FIX UP");
        assert_eq!(run(&mut sg, "SOUR:FREQ:FIX?"), "2401000000\n");
        run(&mut sg, "SOUR:POW:LEV:AMPL 30");
        assert_eq!(run(&mut sg, "SYST:ERR?"), "-222,\"Data out of range\"\n");
        run(&mut sg, "SOUR:SWE:FREQ:DWEL1 0.1");
        run(&mut sg, "SOUR:FREQ:STAR 1e9");
        run(&mut sg, "SOUR:FREQ:STOP 1.002e9");
        run(&mut sg, "SOUR:SWE:FREQ:STEP:LIN 1e6");
        run(&mut sg, "TRIG:FSW:IMM");
        assert_eq!(run(&mut sg, "SOUR:SWE:FREQ:RUNN?"), "1\n");
        assert_eq!(run(&mut sg, "SYST:ERR?"), "0,\"No error\"\n");
    }
}
