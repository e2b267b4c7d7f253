//! Driver for the Santec TSL-550 tunable laser, over its serial remote
//! command set (RS-232C, or USB as a virtual serial port).
//!
//! The class is `TSL550`, with PyroLab's methods and arguments, so a
//! PyroLab configuration (`module: pyrolab.drivers.lasers.tsl550`,
//! `classname: TSL550`) and client scripts keep working. Differences from
//! PyroLab's driver, all on purpose:
//!
//! - every read has a timeout (`timeout`, default 2 s), and a laser that
//!   does not answer is a `TimeoutError` rather than a hang;
//! - a lost port is a `ConnectionError`, a garbled reply too; after either,
//!   the next command starts on a clean line;
//! - setters return the value the laser confirms, and a value the laser
//!   did not take (it keeps its own, silently) is a `ValueError`;
//! - `status()` decodes the diode state from the sign, also when the other
//!   digits are all zero; `sweep_wavelength` / `sweep_frequency` use their
//!   `step_size` in stepped mode, and `sweep_frequency` computes its speed
//!   in nm/s.
//!
//! Parameters (`parameters:` of the service; all optional): `port`,
//! `baudrate` (9600), `terminator` ("\r"), `timeout` (seconds, 2.0),
//! `query_delay` (seconds, 0), used by `autoconnect()` and as `connect()`'s
//! defaults.

pub mod link;
pub mod protocol;
pub mod simulator;

use std::time::Duration;

use pyrolab_plugin_api::prelude::*;
use pyrolab_plugin_api::tracing;

use link::{Link, SerialLink, SerialSettings};
use protocol::{
    MAX_ATTENUATION, MAX_POWER_DBM, MAX_SWEEP_COUNT, MAX_WAVELENGTH, MIN_ATTENUATION,
    MIN_POWER_DBM, MIN_WAVELENGTH, Status, SweepMode, TRIGGER_MODES,
};

/// The service's `parameters:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    /// The serial device (`/dev/ttyUSB0`, `COM3`).
    #[serde(default)]
    pub port: Option<String>,
    /// Baud rate.
    #[serde(default = "default_baudrate")]
    pub baudrate: u32,
    /// Line terminator: "\r", "\n" or "\r\n".
    #[serde(default = "default_terminator")]
    pub terminator: String,
    /// Seconds a reply may take.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Seconds to wait between a command and reading its reply.
    #[serde(default)]
    pub query_delay: f64,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            port: None,
            baudrate: default_baudrate(),
            terminator: default_terminator(),
            timeout: default_timeout(),
            query_delay: 0.0,
        }
    }
}

fn default_baudrate() -> u32 {
    9600
}

fn default_terminator() -> String {
    "\r".to_owned()
}

fn default_timeout() -> f64 {
    2.0
}

/// How long a value read back may differ from the value set, relative.
const CONFIRM_TOLERANCE: f64 = 1e-6;

/// The Santec TSL-550 tunable laser.
pub struct Tsl550 {
    parameters: Parameters,
    link: Option<Box<dyn Link>>,
    /// Whether the diode is on, as last commanded or read.
    is_on: bool,
    /// `auto` or `manual` power control, as last commanded.
    power_control: &'static str,
}

impl Tsl550 {
    /// A driver talking over `link` (a test double, or a port opened
    /// elsewhere).
    pub fn with_link(link: Box<dyn Link>) -> Tsl550 {
        Tsl550 {
            parameters: Parameters::default(),
            link: Some(link),
            is_on: false,
            power_control: "auto",
        }
    }

    fn link(&mut self) -> Result<&mut Box<dyn Link>> {
        self.link.as_mut().ok_or_else(|| {
            DriverError::connection(
                "not connected to a laser: call connect() or autoconnect() first",
            )
        })
    }

    /// One command, one reply line.
    fn query(&mut self, command: &str) -> Result<String> {
        tracing::debug!(command, "sending");
        let reply = self.link()?.query(command)?;
        tracing::debug!(command, reply, "received");
        Ok(reply)
    }

    /// A command whose reply is a number.
    fn query_number(&mut self, command: &str) -> Result<f64> {
        let reply = self.query(command)?;
        protocol::number(&reply).ok_or_else(|| link::garbled(command, reply.as_bytes()))
    }

    /// A command whose reply is an integer.
    fn query_integer(&mut self, command: &str) -> Result<i64> {
        let reply = self.query(command)?;
        protocol::integer(&reply).ok_or_else(|| link::garbled(command, reply.as_bytes()))
    }

    /// Reads `name`, or sets it to `value` (formatted with `decimals`) and
    /// returns what the laser confirms.
    fn setting(
        &mut self,
        name: &str,
        value: Option<f64>,
        decimals: usize,
        what: &str,
    ) -> Result<f64> {
        let Some(value) = value else {
            return self.query_number(name);
        };
        let confirmed = self.query_number(&protocol::with_value(name, value, decimals))?;
        let sent: f64 = format!("{value:.decimals$}").parse().unwrap_or(value);
        let tolerance =
            CONFIRM_TOLERANCE * sent.abs().max(1.0) + 0.5 * 10f64.powi(-(decimals as i32));
        if (confirmed - sent).abs() > tolerance {
            return Err(DriverError::value(format!(
                "the laser did not take {what} {sent} (it keeps {confirmed}){}",
                if name == "WA" || name == "FQ" {
                    "; the wavelength is set only while the diode is on and no sweep runs"
                } else {
                    ""
                }
            )));
        }
        Ok(confirmed)
    }

    fn check_range(what: &str, value: f64, min: f64, max: f64, unit: &str) -> Result<()> {
        if value.is_finite() && (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(DriverError::value(format!(
                "{what} must be between {min} and {max} {unit}, not {value}"
            )))
        }
    }

    fn action(&mut self, command: &str) -> Result<()> {
        self.query(command).map(drop)
    }
}

/// Drives a Santec TSL-550 tunable laser over its serial remote command
/// set (PyroLab's TSL550, with timeouts and checked replies).
#[service(name = "TSL550")]
impl Tsl550 {
    #[constructor]
    pub fn new(parameters: Parameters) -> Result<Self> {
        check_timing(parameters.timeout, parameters.query_delay)?;
        Ok(Tsl550 {
            parameters,
            link: None,
            is_on: false,
            power_control: "auto",
        })
    }

    /// Opens the serial port and readies the laser (as PyroLab does: the
    /// shutter closed, automatic power control, sweep mode 2). Arguments
    /// not given come from the service's parameters. Returns True.
    pub fn connect(
        &mut self,
        port: Option<String>,
        baudrate: Option<u32>,
        terminator: Option<String>,
        timeout: Option<f64>,
        query_delay: Option<f64>,
    ) -> Result<bool> {
        if self.link.is_some() {
            return Ok(true);
        }
        let defaults = &self.parameters;
        let port = port.or_else(|| defaults.port.clone()).ok_or_else(|| {
            DriverError::value("no port: give connect(port=...) or the service parameter `port`")
        })?;
        let terminator = terminator.unwrap_or_else(|| defaults.terminator.clone());
        if !matches!(terminator.as_str(), "\r" | "\n" | "\r\n") {
            return Err(DriverError::value(format!(
                "terminator must be \"\\r\", \"\\n\" or \"\\r\\n\", not {terminator:?}"
            )));
        }
        let timeout = timeout.unwrap_or(defaults.timeout);
        let query_delay = query_delay.unwrap_or(defaults.query_delay);
        check_timing(timeout, query_delay)?;
        let link = SerialLink::open(SerialSettings {
            port: port.clone(),
            baudrate: baudrate.unwrap_or(defaults.baudrate),
            terminator: terminator.into_bytes(),
            timeout: Duration::from_secs_f64(timeout),
            query_delay: Duration::from_secs_f64(query_delay),
        })?;
        self.link = Some(Box::new(link));
        let readied = self.ready();
        if let Err(err) = readied {
            self.link = None;
            return Err(err.context(format!("while readying the laser on {port}")));
        }
        tracing::info!(%port, "connected to the TSL-550");
        Ok(true)
    }

    /// Connects with the service's parameters.
    pub fn autoconnect(&mut self) -> Result<bool> {
        self.connect(None, None, None, None, None)
    }

    /// Closes the serial port (the laser keeps its state).
    pub fn close(&mut self) {
        if self.link.take().is_some() {
            tracing::info!("disconnected from the TSL-550");
        }
    }

    /// Whether a port is open.
    #[getter]
    pub fn connected(&self) -> bool {
        self.link.is_some()
    }

    /// Whether the diode is on, as last commanded or read (`status()`
    /// reads it).
    #[getter]
    pub fn is_on(&self) -> bool {
        self.is_on
    }

    /// `auto` or `manual` power control, as last commanded.
    #[getter]
    pub fn power_control(&self) -> String {
        self.power_control.to_owned()
    }

    /// The laser's identification (`*IDN?`).
    pub fn ident(&mut self) -> Result<String> {
        self.query("*IDN?")
    }

    /// Turns the laser diode on.
    pub fn on(&mut self) -> Result<()> {
        self.action("LO")?;
        self.is_on = true;
        Ok(())
    }

    /// Turns the laser diode off.
    pub fn off(&mut self) -> Result<()> {
        self.action("LF")?;
        self.is_on = false;
        Ok(())
    }

    /// The output wavelength in nm; with `val`, sets it first (1500 to 1630
    /// nm; the diode must be on).
    pub fn wavelength(&mut self, val: Option<f64>) -> Result<f64> {
        if let Some(nm) = val {
            Self::check_range("wavelength", nm, MIN_WAVELENGTH, MAX_WAVELENGTH, "nm")?;
        }
        self.setting("WA", val, 4, "wavelength")
    }

    /// The output frequency in THz; with `val`, sets it first.
    pub fn frequency(&mut self, val: Option<f64>) -> Result<f64> {
        if let Some(thz) = val {
            let (min, max) = (
                protocol::frequency_of(MAX_WAVELENGTH),
                protocol::frequency_of(MIN_WAVELENGTH),
            );
            Self::check_range("frequency", thz, min, max, "THz")?;
        }
        self.setting("FQ", val, 5, "frequency")
    }

    /// The output power in mW; with `val`, sets it first.
    #[allow(non_snake_case)]
    pub fn power_mW(&mut self, val: Option<f64>) -> Result<f64> {
        if let Some(mw) = val {
            let (min, max) = (
                protocol::mw_of_dbm(MIN_POWER_DBM),
                protocol::mw_of_dbm(MAX_POWER_DBM),
            );
            Self::check_range("power", mw, min, max, "mW")?;
        }
        self.setting("LP", val, 2, "power (mW)")
    }

    /// The output power in dBm; with `val`, sets it first (-15 to 13 dBm).
    #[allow(non_snake_case)]
    pub fn power_dBm(&mut self, val: Option<f64>) -> Result<f64> {
        if let Some(dbm) = val {
            Self::check_range("power", dbm, MIN_POWER_DBM, MAX_POWER_DBM, "dBm")?;
        }
        self.setting("OP", val, 2, "power (dBm)")
    }

    /// The attenuation in dB; with `val`, sets it first (0 to 30 dB; manual
    /// power control).
    pub fn power_att(&mut self, val: Option<f64>) -> Result<f64> {
        if let Some(db) = val {
            Self::check_range("attenuation", db, MIN_ATTENUATION, MAX_ATTENUATION, "dB")?;
        }
        self.setting("AT", val, 2, "attenuation")
    }

    /// Automatic power control.
    pub fn power_auto(&mut self) -> Result<()> {
        self.action("AF")?;
        self.power_control = "auto";
        Ok(())
    }

    /// Manual power control (the attenuator).
    pub fn power_manual(&mut self) -> Result<()> {
        self.action("AO")?;
        self.power_control = "manual";
        Ok(())
    }

    /// Opens the shutter.
    pub fn open_shutter(&mut self) -> Result<()> {
        self.action("SO")
    }

    /// Closes the shutter.
    pub fn close_shutter(&mut self) -> Result<()> {
        self.action("SC")
    }

    /// Sweep speed in nm/s (0.5 to 100); with `val`, sets it first.
    pub fn sweep_speed(&mut self, val: Option<f64>) -> Result<f64> {
        self.setting("SN", val, 1, "sweep speed")
    }

    /// Step of a stepped sweep in nm; with `val`, sets it first.
    pub fn sweep_step_wavelength(&mut self, val: Option<f64>) -> Result<f64> {
        self.setting("WW", val, 4, "sweep step (nm)")
    }

    /// Step of a stepped sweep in THz; with `val`, sets it first.
    pub fn sweep_step_frequency(&mut self, val: Option<f64>) -> Result<f64> {
        self.setting("WF", val, 5, "sweep step (THz)")
    }

    /// Time per step of a stepped sweep in s; with `val`, sets it first.
    pub fn sweep_step_time(&mut self, val: Option<f64>) -> Result<f64> {
        self.setting("SB", val, 1, "sweep step time")
    }

    /// Pause between sweeps in s; with `val`, sets it first.
    pub fn sweep_delay(&mut self, val: Option<f64>) -> Result<f64> {
        self.setting("SA", val, 1, "sweep delay")
    }

    /// Sweep start wavelength in nm; with `val`, sets it first.
    pub fn sweep_start_wavelength(&mut self, val: Option<f64>) -> Result<f64> {
        self.setting("SS", val, 4, "sweep start wavelength")
    }

    /// Sweep start frequency in THz; with `val`, sets it first.
    pub fn sweep_start_frequency(&mut self, val: Option<f64>) -> Result<f64> {
        self.setting("FS", val, 5, "sweep start frequency")
    }

    /// Sweep end wavelength in nm; with `val`, sets it first.
    pub fn sweep_end_wavelength(&mut self, val: Option<f64>) -> Result<f64> {
        self.setting("SE", val, 4, "sweep end wavelength")
    }

    /// Sweep end frequency in THz; with `val`, sets it first.
    pub fn sweep_end_frequency(&mut self, val: Option<f64>) -> Result<f64> {
        self.setting("FF", val, 5, "sweep end frequency")
    }

    /// Chooses the sweep mode.
    pub fn sweep_set_mode(
        &mut self,
        #[default(true)] continuous: bool,
        #[default(true)] twoway: bool,
        #[default(false)] trigger: bool,
        #[default(false)] const_freq_step: bool,
    ) -> Result<()> {
        let mode = SweepMode {
            continuous,
            twoway,
            trigger,
            const_freq_step,
        };
        let number = mode
            .number()
            .ok_or_else(|| DriverError::value("Invalid sweep configuration."))?;
        let confirmed = self.query_integer(&format!("SM{number}"))?;
        if confirmed != i64::from(number) {
            return Err(DriverError::value(format!(
                "the laser did not take sweep mode {number} (it keeps {confirmed})"
            )));
        }
        Ok(())
    }

    /// The sweep mode: {continuous, twoway, trigger, const_freq_step}.
    pub fn sweep_get_mode(&mut self) -> Result<std::collections::BTreeMap<&'static str, bool>> {
        let number = self.query_integer("SM")?;
        SweepMode::from_number(number)
            .map(SweepMode::to_map)
            .ok_or_else(|| {
                DriverError::value(format!("the laser reports an unknown sweep mode {number}"))
            })
    }

    /// Starts `num` sweeps (0 to 999; 0 sweeps until stopped).
    pub fn sweep_start(&mut self, #[default(1)] num: u32) -> Result<()> {
        if num > MAX_SWEEP_COUNT {
            return Err(DriverError::value(format!(
                "num must be at most {MAX_SWEEP_COUNT}, not {num}"
            )));
        }
        self.query_integer(&format!("SZ{num}"))?;
        self.action("SG")
    }

    /// Pauses the sweep.
    pub fn sweep_pause(&mut self) -> Result<()> {
        self.action("SP")
    }

    /// Resumes a paused sweep.
    pub fn sweep_resume(&mut self) -> Result<()> {
        self.action("SR")
    }

    /// Stops the sweep; `immediate` stops at once rather than at the end
    /// of the current sweep.
    pub fn sweep_stop(&mut self, #[default(true)] immediate: bool) -> Result<()> {
        if immediate {
            self.action("SP")?;
        }
        self.action("SQ")
    }

    /// Sweep status: 0 off, 1 running, 2 paused, 3 waiting for a trigger,
    /// 4 returning to the start.
    pub fn sweep_status(&mut self) -> Result<i64> {
        self.query_integer("SK")
    }

    /// Sweeps the wavelength from `start` to `stop` nm over `duration`
    /// seconds, `number` times, `delay` s apart; stepped sweeps move by
    /// `step_size` nm, each step lasting `duration` s.
    #[allow(clippy::too_many_arguments)]
    pub fn sweep_wavelength(
        &mut self,
        start: f64,
        stop: f64,
        duration: f64,
        #[default(1)] number: u32,
        #[default(0.0)] delay: f64,
        #[default(true)] continuous: bool,
        #[default(1.0)] step_size: f64,
        #[default(false)] twoway: bool,
        #[default(false)] trigger: bool,
    ) -> Result<()> {
        Self::check_range("start", start, MIN_WAVELENGTH, MAX_WAVELENGTH, "nm")?;
        Self::check_range("stop", stop, MIN_WAVELENGTH, MAX_WAVELENGTH, "nm")?;
        check_duration(duration)?;
        self.sweep_start_wavelength(Some(start))?;
        self.sweep_end_wavelength(Some(stop))?;
        let span = (stop - start).abs();
        self.run_sweep(
            span, duration, number, delay, continuous, step_size, twoway, trigger, false,
        )
    }

    /// Sweeps the frequency from `start` to `stop` THz, as
    /// `sweep_wavelength` (stepped sweeps in steps of `step_size` THz).
    #[allow(clippy::too_many_arguments)]
    pub fn sweep_frequency(
        &mut self,
        start: f64,
        stop: f64,
        duration: f64,
        #[default(1)] number: u32,
        #[default(0.0)] delay: f64,
        #[default(true)] continuous: bool,
        #[default(0.1)] step_size: f64,
        #[default(false)] twoway: bool,
        #[default(false)] trigger: bool,
    ) -> Result<()> {
        check_duration(duration)?;
        self.sweep_start_frequency(Some(start))?;
        self.sweep_end_frequency(Some(stop))?;
        let span = (protocol::wavelength_of(stop) - protocol::wavelength_of(start)).abs();
        self.run_sweep(
            span, duration, number, delay, continuous, step_size, twoway, trigger, true,
        )
    }

    /// Enables the external trigger input.
    pub fn trigger_enable_output(&mut self) -> Result<()> {
        self.action("TRE")
    }

    /// Disables the external trigger input.
    pub fn trigger_disable_output(&mut self) -> Result<()> {
        self.action("TRD")
    }

    /// The trigger mode: "None", "Stop", "Start" or "Step".
    pub fn trigger_get_mode(&mut self) -> Result<String> {
        let mode = self.query_integer("TM")?;
        trigger_mode_name(mode)
    }

    /// Sets the trigger mode ("None", "Stop", "Start" or "Step"); returns
    /// it.
    pub fn trigger_set_mode(&mut self, val: Option<String>) -> Result<String> {
        let name = val.unwrap_or_else(|| "None".to_owned());
        let number = TRIGGER_MODES
            .iter()
            .position(|m| *m == name)
            .ok_or_else(|| {
                DriverError::value(format!(
                    "trigger mode must be one of {TRIGGER_MODES:?}, not {name:?}"
                ))
            })?;
        let mode = self.query_integer(&format!("TM{number}"))?;
        trigger_mode_name(mode)
    }

    /// The trigger step in nm; with `step`, sets it first.
    pub fn trigger_step(&mut self, step: Option<f64>) -> Result<f64> {
        self.setting("TW", step, 4, "trigger step")
    }

    /// How many wavelengths the last sweep logged.
    pub fn wavelength_logging_number(&mut self) -> Result<i64> {
        self.query_integer("TN")
    }

    /// The wavelengths (nm) the last sweep logged.
    pub fn wavelength_logging(&mut self) -> Result<Vec<f64>> {
        let count = usize::try_from(self.wavelength_logging_number()?)
            .map_err(|_| DriverError::runtime("the laser reports a negative log length"))?;
        let bytes = self.link()?.query_bytes("TA", count * 4)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|word| {
                f64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]])) / 10_000.0
            })
            .collect())
    }

    /// The wavelengths (nm) the last sweep logged, as an item stream: a
    /// client iterates over them (a long log is not one large reply). The
    /// log is read from the laser at the call; its items then go out one
    /// by one.
    pub fn stream_wavelength_logging(
        &mut self,
    ) -> Result<impl Iterator<Item = f64> + Send + 'static> {
        Ok(self.wavelength_logging()?.into_iter())
    }

    /// The status word (`SU`, e.g. "-000000"); with `verbose`, followed by
    /// what it means.
    pub fn status(&mut self, #[default(false)] verbose: bool) -> Result<String> {
        let reply = self.query("SU")?;
        let status = Status::parse(&reply).ok_or_else(|| link::garbled("SU", reply.as_bytes()))?;
        self.is_on = status.diode_on;
        Ok(if verbose {
            format!("{}: {}", status.raw, status.describe())
        } else {
            status.raw
        })
    }
}

impl Tsl550 {
    /// Readies a freshly connected laser, as PyroLab does.
    fn ready(&mut self) -> Result<()> {
        self.status(false)?;
        self.close_shutter()?;
        self.power_auto()?;
        self.sweep_set_mode(true, true, false, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_sweep(
        &mut self,
        span_nm: f64,
        duration: f64,
        number: u32,
        delay: f64,
        continuous: bool,
        step_size: f64,
        twoway: bool,
        trigger: bool,
        by_frequency: bool,
    ) -> Result<()> {
        self.sweep_delay(Some(delay))?;
        if continuous {
            let speed = span_nm / duration * if twoway { 2.0 } else { 1.0 };
            self.sweep_speed(Some(speed))?;
        } else {
            self.sweep_step_time(Some(duration))?;
            if by_frequency {
                self.sweep_step_frequency(Some(step_size))?;
            } else {
                self.sweep_step_wavelength(Some(step_size))?;
            }
        }
        self.sweep_set_mode(continuous, twoway, trigger, by_frequency && !continuous)?;
        if !self.is_on {
            self.on()?;
        }
        self.sweep_start(number)
    }
}

fn check_timing(timeout: f64, query_delay: f64) -> Result<()> {
    if !(timeout > 0.0 && timeout <= 3600.0) {
        return Err(DriverError::value(format!(
            "timeout must be more than 0 and at most 3600 seconds, not {timeout}"
        )));
    }
    if !(0.0..=60.0).contains(&query_delay) {
        return Err(DriverError::value(format!(
            "query_delay must be 0 to 60 seconds, not {query_delay}"
        )));
    }
    Ok(())
}

fn check_duration(duration: f64) -> Result<()> {
    if duration.is_finite() && duration > 0.0 {
        Ok(())
    } else {
        Err(DriverError::value(format!(
            "duration must be a positive number of seconds, not {duration}"
        )))
    }
}

fn trigger_mode_name(mode: i64) -> Result<String> {
    usize::try_from(mode)
        .ok()
        .and_then(|m| TRIGGER_MODES.get(m))
        .map(|name| (*name).to_owned())
        .ok_or_else(|| {
            DriverError::value(format!("the laser reports an unknown trigger mode {mode}"))
        })
}

export_plugin!(Tsl550);

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;
    use crate::simulator::{Response, Simulator};

    /// The driver against the simulator, in memory, with every command
    /// recorded.
    struct SimLink {
        simulator: Simulator,
        sent: Arc<Mutex<Vec<String>>>,
    }

    impl Link for SimLink {
        fn query(&mut self, command: &str) -> Result<String> {
            self.sent.lock().unwrap().push(command.to_owned());
            match self.simulator.respond(command, Instant::now()) {
                Response::Line(line) => Ok(line),
                Response::Binary(_) => Err(DriverError::runtime("binary reply")),
            }
        }

        fn query_bytes(&mut self, command: &str, len: usize) -> Result<Vec<u8>> {
            self.sent.lock().unwrap().push(command.to_owned());
            match self.simulator.respond(command, Instant::now()) {
                Response::Binary(bytes) => Ok(bytes[..len.min(bytes.len())].to_vec()),
                Response::Line(_) => Err(DriverError::runtime("line reply")),
            }
        }
    }

    fn laser() -> (Tsl550, Arc<Mutex<Vec<String>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let link = SimLink {
            simulator: Simulator::new(),
            sent: Arc::clone(&sent),
        };
        (Tsl550::with_link(Box::new(link)), sent)
    }

    #[test]
    fn sets_and_reads_wavelength_and_power_as_pyrolab_sends_them() {
        let (mut laser, sent) = laser();
        laser.on().unwrap();
        assert_eq!(laser.wavelength(Some(1560.25)).unwrap(), 1560.25);
        assert_eq!(laser.wavelength(None).unwrap(), 1560.25);
        assert_eq!(laser.power_dBm(Some(-3.0)).unwrap(), -3.0);
        assert!((laser.power_mW(None).unwrap() - 0.501).abs() < 0.001);
        assert_eq!(
            sent.lock().unwrap()[..5],
            ["LO", "WA1560.2500", "WA", "OP-3.00", "LP"]
        );
    }

    #[test]
    fn values_out_of_range_or_refused_are_value_errors() {
        let (mut laser, sent) = laser();
        let err = laser.wavelength(Some(1700.0)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueError);
        assert!(sent.lock().unwrap().is_empty(), "checked before sending");
        // The diode is off: the laser keeps its wavelength.
        let err = laser.wavelength(Some(1560.0)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueError);
        assert!(
            err.message().contains("did not take wavelength 1560"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_sweep_is_configured_and_started() {
        let (mut laser, sent) = laser();
        laser
            .sweep_wavelength(1550.0, 1551.0, 0.1, 1, 0.0, true, 1.0, false, false)
            .unwrap();
        assert_eq!(laser.sweep_status().unwrap(), 1);
        let sent = sent.lock().unwrap();
        assert_eq!(
            sent[..],
            [
                "SS1550.0000",
                "SE1551.0000",
                "SA0.0",
                "SN10.0",
                "SM1",
                "LO",
                "SZ1",
                "SG",
                "SK"
            ]
        );
    }

    #[test]
    fn status_decodes_the_diode_from_the_sign() {
        let (mut laser, _) = laser();
        assert_eq!(laser.status(false).unwrap(), "000000");
        assert!(!laser.is_on());
        laser.on().unwrap();
        assert!(laser.status(true).unwrap().starts_with("-000000: LD ON"));
    }

    #[test]
    fn not_connected_is_a_connection_error() {
        let mut laser = Tsl550::new(Parameters::default()).unwrap();
        let err = laser.wavelength(None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionError);
        let err = laser.connect(None, None, None, None, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueError, "no port");
        let err = laser
            .connect(
                Some("/dev/nonexistent-tsl550".into()),
                None,
                None,
                None,
                None,
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionError);
        assert!(err.message().contains("Could not connect to laser on port"));
    }
}
