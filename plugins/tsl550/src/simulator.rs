//! A TSL-550 that is not there: the instrument's remote-command behaviour
//! as a state machine, for tests (and for trying a setup without the
//! laser). Feed it the lines the driver sends; it answers as the laser
//! does, keeping its state between commands.
//!
//! What it models: the settings and their ranges (a value the laser cannot
//! take is not applied, and the reply is the value it keeps: the manual
//! documents no error reply), the diode and shutter, a wavelength that can
//! be set only while the diode is on, tuning that takes a moment (status
//! digit 1), sweeps that run for the time their settings give (status
//! `SK`, pause, resume, stop, repetitions, software trigger), the
//! wavelength log of the last sweep (`TN`, `TA`), and `*IDN?`.
//!
//! Timing is given by the caller (`now`), so tests can run it on a real
//! clock or step it by hand.

use std::time::{Duration, Instant};

use crate::protocol::{
    self, MAX_ATTENUATION, MAX_SWEEP_COUNT, MAX_SWEEP_SPEED, MAX_SWEEP_STEP, MAX_SWEEP_TIME,
    MAX_WAVELENGTH, MIN_ATTENUATION, MIN_SWEEP_SPEED, MIN_SWEEP_STEP, MIN_WAVELENGTH, SweepMode,
    sweep_status,
};

/// What the laser sends back for one command.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// A line; the caller adds the terminator.
    Line(String),
    /// Raw bytes, no terminator (`TA`'s binary log).
    Binary(Vec<u8>),
}

/// The simulated laser's identification.
pub const IDENTITY: &str = "SANTEC,TSL-550,06020001,0001.0000";

/// The setting range of `OP` in the manual (dBm); the laser takes values up
/// to its maximum even where it cannot reach them.
const OP_RANGE: (f64, f64) = (-17.0, 13.0);
/// The setting range of `LP` (mW).
const LP_RANGE: (f64, f64) = (0.02, 20.0);
/// How long tuning to a new wavelength takes.
const TUNING_TIME: Duration = Duration::from_millis(100);

/// A sweep in progress.
#[derive(Clone, Debug)]
struct Sweep {
    /// When it (last) started or resumed.
    since: Instant,
    /// Time run before `since` (pauses).
    run_before: Duration,
    /// Its whole length.
    length: Duration,
    paused: bool,
    waiting_for_trigger: bool,
    start: f64,
    end: f64,
    twoway: bool,
    count: u32,
}

/// The simulated laser.
#[derive(Clone, Debug)]
pub struct Simulator {
    diode_on: bool,
    shutter_open: bool,
    power_auto: bool,
    wavelength: f64,
    power_dbm: f64,
    attenuation: f64,
    tuned_at: Option<Instant>,
    sweep_start: f64,
    sweep_end: f64,
    sweep_speed: f64,
    sweep_step: f64,
    sweep_step_time: f64,
    sweep_delay: f64,
    sweep_count: u32,
    sweep_mode: u8,
    sweep: Option<Sweep>,
    sweeps_done: u32,
    trigger_mode: u8,
    trigger_step: f64,
    trigger_input: bool,
    log: Vec<f64>,
}

impl Default for Simulator {
    fn default() -> Self {
        Simulator::new()
    }
}

impl Simulator {
    /// A laser just switched on at the front panel: diode off, shutter
    /// closed, 1550 nm, 0 dBm.
    pub fn new() -> Simulator {
        Simulator {
            diode_on: false,
            shutter_open: false,
            power_auto: true,
            wavelength: 1550.0,
            power_dbm: 0.0,
            attenuation: 0.0,
            tuned_at: None,
            sweep_start: 1500.0,
            sweep_end: 1630.0,
            sweep_speed: 10.0,
            sweep_step: 1.0,
            sweep_step_time: 0.5,
            sweep_delay: 0.0,
            sweep_count: 1,
            sweep_mode: 1,
            sweep: None,
            sweeps_done: 0,
            trigger_mode: 0,
            trigger_step: 1.0,
            trigger_input: false,
            log: Vec::new(),
        }
    }

    /// Whether the diode is on.
    pub fn diode_on(&self) -> bool {
        self.diode_on
    }

    /// The wavelength now (nm).
    pub fn wavelength(&mut self, now: Instant) -> f64 {
        self.advance(now);
        self.wavelength
    }

    /// Answers one command line (without its terminator).
    pub fn handle(&mut self, line: &str, now: Instant) -> Response {
        self.advance(now);
        let line = line.trim();
        if line.eq_ignore_ascii_case("*IDN?") {
            return Response::Line(IDENTITY.to_owned());
        }
        // The longest command name first: `TRE` before `TR`, `SK` ...
        let split = line
            .find(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.')
            .unwrap_or(line.len());
        let (command, value) = line.split_at(split);
        let value = value.trim();
        let number = if value.is_empty() {
            None
        } else {
            match protocol::number(value) {
                Some(number) => Some(number),
                // Not a number: the laser ignores the value.
                None => return Response::Line(String::new()),
            }
        };
        Response::Line(self.command(&command.to_ascii_uppercase(), number, now))
    }

    fn command(&mut self, command: &str, value: Option<f64>, now: Instant) -> String {
        match command {
            "LO" => {
                self.diode_on = true;
                String::new()
            }
            "LF" => {
                self.diode_on = false;
                self.sweep = None;
                String::new()
            }
            "SO" => {
                self.shutter_open = true;
                String::new()
            }
            "SC" => {
                self.shutter_open = false;
                String::new()
            }
            "AF" => {
                self.power_auto = true;
                String::new()
            }
            "AO" => {
                self.power_auto = false;
                String::new()
            }
            "WA" => {
                if let Some(nm) = value {
                    self.tune(nm, now);
                }
                format!("{:.4}", self.wavelength)
            }
            "FQ" => {
                if let Some(thz) = value {
                    self.tune(protocol::wavelength_of(thz), now);
                }
                format!("{:.5}", protocol::frequency_of(self.wavelength))
            }
            "OP" => {
                if let Some(dbm) = value.filter(|v| (OP_RANGE.0..=OP_RANGE.1).contains(v)) {
                    self.power_dbm = dbm;
                }
                padded(self.power_dbm, 3, 8)
            }
            "LP" => {
                if let Some(mw) = value.filter(|v| (LP_RANGE.0..=LP_RANGE.1).contains(v)) {
                    self.power_dbm = protocol::dbm_of_mw(mw);
                }
                padded(protocol::mw_of_dbm(self.power_dbm), 3, 7)
            }
            "AT" => {
                if let Some(db) = value.filter(|v| (MIN_ATTENUATION..=MAX_ATTENUATION).contains(v))
                {
                    self.attenuation = db;
                }
                padded(self.attenuation, 3, 7)
            }
            "SS" => set_wavelength_in_range(&mut self.sweep_start, value),
            "SE" => set_wavelength_in_range(&mut self.sweep_end, value),
            "FS" => set_frequency_in_range(&mut self.sweep_start, value),
            "FF" => set_frequency_in_range(&mut self.sweep_end, value),
            "SN" => {
                set_in(
                    &mut self.sweep_speed,
                    value,
                    MIN_SWEEP_SPEED,
                    MAX_SWEEP_SPEED,
                );
                padded(self.sweep_speed, 3, 7)
            }
            "WW" => {
                set_in(&mut self.sweep_step, value, MIN_SWEEP_STEP, MAX_SWEEP_STEP);
                padded(self.sweep_step, 4, 8)
            }
            "WF" => {
                // A frequency step, kept as the wavelength step it makes
                // at the current wavelength: dλ = λ² / c · df.
                let nm_per_thz =
                    self.wavelength * self.wavelength / (protocol::SPEED_OF_LIGHT / 1000.0);
                if let Some(thz) = value {
                    set_in(
                        &mut self.sweep_step,
                        Some(thz * nm_per_thz),
                        MIN_SWEEP_STEP,
                        MAX_SWEEP_STEP,
                    );
                }
                padded(self.sweep_step / nm_per_thz, 5, 8)
            }
            "SB" => {
                set_in(&mut self.sweep_step_time, value, 0.0, MAX_SWEEP_TIME);
                padded(self.sweep_step_time, 2, 7)
            }
            "SA" => {
                set_in(&mut self.sweep_delay, value, 0.0, MAX_SWEEP_TIME);
                padded(self.sweep_delay, 2, 7)
            }
            "SZ" => {
                if let Some(n) = value.filter(|v| v.fract() == 0.0) {
                    if (0.0..=f64::from(MAX_SWEEP_COUNT)).contains(&n) {
                        self.sweep_count = n as u32;
                    }
                }
                format!("{:06}", self.sweep_count)
            }
            "SM" => {
                if let Some(n) = value.filter(|v| v.fract() == 0.0) {
                    if SweepMode::from_number(n as i64).is_some() {
                        self.sweep_mode = n as u8;
                    }
                }
                format!("{:05}", self.sweep_mode)
            }
            "SG" => {
                self.start_sweep(value, now);
                String::new()
            }
            "ST" => {
                if let Some(sweep) = &mut self.sweep {
                    if sweep.waiting_for_trigger {
                        sweep.waiting_for_trigger = false;
                        sweep.since = now;
                    }
                }
                String::new()
            }
            "SP" => {
                if let Some(sweep) = &mut self.sweep {
                    if !sweep.paused && !sweep.waiting_for_trigger {
                        sweep.run_before += now.saturating_duration_since(sweep.since);
                        sweep.paused = true;
                    }
                }
                String::new()
            }
            "SR" => {
                if let Some(sweep) = &mut self.sweep {
                    if sweep.paused {
                        sweep.paused = false;
                        sweep.since = now;
                    }
                }
                String::new()
            }
            "SQ" => {
                self.sweep = None;
                String::new()
            }
            "SK" => self.sweep_status().to_string(),
            "SX" => format!("{:06}", self.sweeps_done),
            "TM" => {
                if let Some(n) = value.filter(|v| (0.0..=3.0).contains(v) && v.fract() == 0.0) {
                    self.trigger_mode = n as u8;
                }
                self.trigger_mode.to_string()
            }
            "TW" => {
                set_in(
                    &mut self.trigger_step,
                    value,
                    MIN_SWEEP_STEP,
                    MAX_SWEEP_STEP,
                );
                padded(self.trigger_step, 4, 8)
            }
            "TRE" => {
                self.trigger_input = true;
                String::new()
            }
            "TRD" => {
                self.trigger_input = false;
                String::new()
            }
            "TN" => format!("{:05}", self.log.len()),
            "SU" => self.status(now).word(),
            // Unknown commands are ignored; the line ends all the same.
            _ => String::new(),
        }
    }

    /// `TA`: the last sweep's wavelength log, big-endian u32 in 0.1 pm.
    pub fn binary_log(&self) -> Vec<u8> {
        self.log
            .iter()
            .flat_map(|nm| ((nm * 10_000.0).round() as u32).to_be_bytes())
            .collect()
    }

    /// Answers a command, as [`handle`](Self::handle), and `TA` too.
    pub fn respond(&mut self, line: &str, now: Instant) -> Response {
        if line.trim().eq_ignore_ascii_case("TA") {
            self.advance(now);
            return Response::Binary(self.binary_log());
        }
        self.handle(line, now)
    }

    fn tune(&mut self, nm: f64, now: Instant) {
        // The wavelength is set only with the diode on, within range, and
        // not during a sweep.
        if self.diode_on && self.sweep.is_none() && (MIN_WAVELENGTH..=MAX_WAVELENGTH).contains(&nm)
        {
            self.wavelength = nm;
            self.tuned_at = Some(now);
        }
    }

    fn status(&self, now: Instant) -> protocol::Status {
        let tuning = self
            .tuned_at
            .is_some_and(|at| now.saturating_duration_since(at) < TUNING_TIME);
        protocol::Status {
            raw: String::new(),
            diode_on: self.diode_on,
            coherence_control: false,
            fine_tuning: false,
            power_mode: if self.power_auto { 0 } else { 1 },
            temperature_error: false,
            current_error: false,
            operation: u8::from(tuning),
        }
    }

    fn start_sweep(&mut self, value: Option<f64>, now: Instant) {
        if !self.diode_on {
            return;
        }
        let mode = SweepMode::from_number(i64::from(self.sweep_mode)).expect("a valid mode");
        let count = if value == Some(1.0) {
            1
        } else {
            self.sweep_count.max(1)
        };
        let span = (self.sweep_end - self.sweep_start).abs();
        let one_way = if mode.continuous {
            span / self.sweep_speed
        } else {
            (span / self.sweep_step).floor() * self.sweep_step_time
        };
        let one = one_way * if mode.twoway { 2.0 } else { 1.0 };
        let length = (one + self.sweep_delay) * f64::from(count) - self.sweep_delay;
        self.sweeps_done = 0;
        self.log.clear();
        self.sweep = Some(Sweep {
            since: now,
            run_before: Duration::ZERO,
            length: Duration::from_secs_f64(length.max(0.0)),
            paused: false,
            waiting_for_trigger: mode.trigger,
            start: self.sweep_start,
            end: self.sweep_end,
            twoway: mode.twoway,
            count,
        });
    }

    fn sweep_status(&self) -> i64 {
        match &self.sweep {
            None => sweep_status::OFF,
            Some(sweep) if sweep.waiting_for_trigger => sweep_status::TRIGGER_WAIT,
            Some(sweep) if sweep.paused => sweep_status::PAUSED,
            Some(_) => sweep_status::RUNNING,
        }
    }

    /// Moves a running sweep on to `now`: the wavelength follows it; when
    /// it ends, its log is kept.
    fn advance(&mut self, now: Instant) {
        let Some(sweep) = &self.sweep else {
            return;
        };
        if sweep.paused || sweep.waiting_for_trigger {
            return;
        }
        let elapsed = sweep.run_before + now.saturating_duration_since(sweep.since);
        let fraction = if sweep.length.is_zero() {
            1.0
        } else {
            (elapsed.as_secs_f64() / sweep.length.as_secs_f64()).min(1.0)
        };
        let per_sweep = fraction * f64::from(sweep.count);
        let within = per_sweep.fract();
        let (from, to) = (sweep.start, sweep.end);
        self.wavelength = if sweep.twoway && within > 0.5 {
            to + (from - to) * (within - 0.5) * 2.0
        } else {
            let t = if sweep.twoway { within * 2.0 } else { within };
            from + (to - from) * t
        };
        self.sweeps_done = per_sweep.floor() as u32;
        if fraction >= 1.0 {
            self.wavelength = if sweep.twoway { from } else { to };
            self.sweeps_done = sweep.count;
            let points = ((to - from).abs() / self.sweep_step).floor() as usize + 1;
            let step = if to >= from {
                self.sweep_step
            } else {
                -self.sweep_step
            };
            self.log = (0..points.min(65_535))
                .map(|i| from + step * i as f64)
                .collect();
            self.sweep = None;
        }
    }
}

/// A value zero-padded as the laser writes it (`-010.000`, `000.100`).
fn padded(value: f64, decimals: usize, width: usize) -> String {
    format!("{value:0width$.decimals$}")
}

fn set_in(field: &mut f64, value: Option<f64>, min: f64, max: f64) {
    if let Some(v) = value.filter(|v| (min..=max).contains(v)) {
        *field = v;
    }
}

fn set_wavelength_in_range(field: &mut f64, value: Option<f64>) -> String {
    set_in(field, value, MIN_WAVELENGTH, MAX_WAVELENGTH);
    format!("{:.4}", *field)
}

fn set_frequency_in_range(field: &mut f64, value: Option<f64>) -> String {
    if let Some(thz) = value.filter(|v| *v > 0.0) {
        set_in(
            field,
            Some(protocol::wavelength_of(thz)),
            MIN_WAVELENGTH,
            MAX_WAVELENGTH,
        );
    }
    format!("{:.5}", protocol::frequency_of(*field))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sim: &mut Simulator, command: &str, now: Instant) -> String {
        match sim.handle(command, now) {
            Response::Line(line) => line,
            Response::Binary(_) => panic!("binary"),
        }
    }

    #[test]
    fn the_wavelength_is_set_only_with_the_diode_on_and_in_range() {
        let now = Instant::now();
        let mut sim = Simulator::new();
        assert_eq!(line(&mut sim, "WA1560.0000", now), "1550.0000", "diode off");
        assert_eq!(line(&mut sim, "LO", now), "");
        assert_eq!(line(&mut sim, "WA1560.0000", now), "1560.0000");
        assert_eq!(line(&mut sim, "SU", now), "-000001", "tuning");
        assert_eq!(line(&mut sim, "SU", now + TUNING_TIME), "-000000");
        assert_eq!(
            line(&mut sim, "WA1700.0000", now),
            "1560.0000",
            "out of range"
        );
        assert_eq!(line(&mut sim, "WA", now), "1560.0000");
        assert_eq!(line(&mut sim, "OP-3.00", now), "-003.000");
        assert_eq!(line(&mut sim, "OP20.00", now), "-003.000");
        assert_eq!(line(&mut sim, "*IDN?", now), IDENTITY);
    }

    #[test]
    fn a_sweep_runs_for_its_length_and_logs_its_wavelengths() {
        let now = Instant::now();
        let mut sim = Simulator::new();
        for command in [
            "LO",
            "SS1550.0000",
            "SE1551.0000",
            "SN10.0",
            "WW0.1000",
            "SM1",
            "SZ1",
        ] {
            line(&mut sim, command, now);
        }
        line(&mut sim, "SG", now);
        assert_eq!(line(&mut sim, "SK", now), "1");
        let halfway = now + Duration::from_millis(50);
        assert!((sim.wavelength(halfway) - 1550.5).abs() < 1e-6);
        line(&mut sim, "SP", halfway);
        assert_eq!(line(&mut sim, "SK", now + Duration::from_secs(5)), "2");
        line(&mut sim, "SR", now + Duration::from_secs(5));
        let end = now + Duration::from_secs(5) + Duration::from_millis(60);
        assert_eq!(line(&mut sim, "SK", end), "0");
        assert_eq!(line(&mut sim, "TN", end), "00011");
        let Response::Binary(bytes) = sim.respond("TA", end) else {
            panic!("binary")
        };
        assert_eq!(&bytes[..4], &15_500_000u32.to_be_bytes());
    }
}
