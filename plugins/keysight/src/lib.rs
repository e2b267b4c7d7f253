//! Driver for the Keysight B2900 source-measure units, over SCPI on the
//! network (the instrument's port 5025), with no VISA library.
//!
//! The class is `B2900`, with PyroLab's methods and arguments, so a PyroLab
//! configuration (`module: pyrolab.drivers.smu.keysight`, `classname:
//! B2900`) and client scripts keep working. Differences from PyroLab's
//! driver, on purpose (docs/keysight.md lists them all):
//!
//! - `measure_current` / `measure_voltage` return a number, not the reply
//!   text; `sweep_voltage` / `sweep_current` stream the measurements (a
//!   Python client gets a generator; `list(...)` makes the list);
//! - `screenshot(form)` returns the image as bytes (PyroLab's writes it to
//!   a path on the machine running the daemon);
//! - `connect(address)` also takes a whole VISA resource string
//!   (`TCPIP0::10.0.0.5::5025::SOCKET`, `TCPIP0::10.0.0.5::inst0::INSTR`);
//! - values out of the instrument's ranges are `ValueError`s, checked
//!   before anything is sent; an instrument that does not answer within
//!   `timeout` is a `TimeoutError`, a garbled reply or a lost connection a
//!   `ConnectionError`, and an error the instrument reports a
//!   `RuntimeError` carrying its message.
//!
//! Parameters (`parameters:` of the service; all optional): `address` (an
//! IP address or host name, or a VISA resource) and `timeout`
//! (milliseconds, 1000), used by `autoconnect()` and as `connect()`'s
//! defaults.

use instrument_io::session::OPERATION_TIMEOUT;
use instrument_io::{Scpi, Session};
use pyrolab_plugin_api::prelude::*;
use pyrolab_plugin_api::tracing;

/// The service's `parameters:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    /// The instrument's address or VISA resource.
    #[serde(default)]
    pub address: Option<String>,
    /// Milliseconds a reply may take.
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// The largest voltage a B2900 sources, in volts.
pub const MAX_VOLTAGE: f64 = 210.0;
/// The largest current, in amperes.
pub const MAX_CURRENT: f64 = 3.03;
/// The most points of a sweep.
pub const MAX_POINTS: usize = 2500;

/// PyroLab's default timeout, in milliseconds.
const DEFAULT_TIMEOUT_MS: f64 = 1000.0;

/// The Keysight B2900 source-measure unit.
pub struct B2900 {
    parameters: Parameters,
    session: Session,
}

impl B2900 {
    fn scpi(&mut self) -> Result<&mut Scpi> {
        self.session.scpi()
    }

    /// `:SOUR2...` for channel 2, `:SOUR...` for channel 0 (the default
    /// channel) and 1, as PyroLab writes them; and the `(@N)` list.
    fn channel(channel: i64) -> Result<(&'static str, &'static str)> {
        match channel {
            0 => Ok(("", "(@1)")),
            1 => Ok(("1", "(@1)")),
            2 => Ok(("2", "(@2)")),
            other => Err(DriverError::value(format!(
                "channel must be 1 or 2 (0: the first), not {other}"
            ))),
        }
    }

    fn check_level(what: &str, value: f64, max: f64, unit: &str) -> Result<()> {
        if value.is_finite() && value.abs() <= max {
            Ok(())
        } else {
            Err(DriverError::value(format!(
                "{what} must be between -{max} and {max} {unit}, not {value}"
            )))
        }
    }

    fn check_limit(what: &str, value: f64, max: f64, unit: &str) -> Result<()> {
        if value.is_finite() && value > 0.0 && value <= max {
            Ok(())
        } else {
            Err(DriverError::value(format!(
                "{what} must be above 0 and at most {max} {unit}, not {value}"
            )))
        }
    }

    /// A spot measurement: reset, source `level` of `source` (`VOLT` or
    /// `CURR`), limit the other at `compliance`, measure it once.
    fn spot(
        &mut self,
        source: &str,
        sense: &str,
        level: f64,
        compliance: f64,
        power_line_cycles: f64,
        channel: i64,
    ) -> Result<f64> {
        if !(power_line_cycles.is_finite() && (0.0004..=100.0).contains(&power_line_cycles)) {
            return Err(DriverError::value(format!(
                "power_line_cycles must be between 0.0004 and 100, not {power_line_cycles}"
            )));
        }
        let (n, list) = Self::channel(channel)?;
        let scpi = self.scpi()?;
        scpi.write("*RST")?;
        scpi.write(&format!(":SOUR{n}:FUNC:MODE {source}"))?;
        scpi.write(&format!(":SOUR{n}:{source} {level}"))?;
        scpi.wait_complete(OPERATION_TIMEOUT)?;
        scpi.write(&format!(":SENS{n}:{sense}:PROT {compliance}"))?;
        scpi.write(&format!(":SENS{n}:{sense}:RANG:AUTO ON"))?;
        scpi.write(&format!(":SENS{n}:FUNC \"{sense}\""))?;
        scpi.write(&format!(":SENS{n}:{sense}:NPLC {power_line_cycles}"))?;
        scpi.check()?;
        scpi.write(":OUTP ON")?;
        let measured = scpi.query_parsed::<f64>(&format!(":MEAS:{sense}? {list}"));
        // Off whatever the measurement did.
        let off = scpi.write(":OUTP OFF");
        let measured = measured?;
        off?;
        scpi.check()?;
        Ok(measured)
    }

    /// A staircase sweep of `source` from `start` to `stop`, measuring
    /// `sense` at each of `steps` points.
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        &mut self,
        source: &str,
        sense: &str,
        (start, stop, steps): (f64, f64, i64),
        compliance: f64,
        measurement_speed: f64,
        channel: i64,
        log: bool,
    ) -> Result<Vec<f64>> {
        let points = usize::try_from(steps)
            .ok()
            .filter(|p| (1..=MAX_POINTS).contains(p))
            .ok_or_else(|| {
                DriverError::value(format!(
                    "steps must be from 1 to {}, not {steps}",
                    MAX_POINTS
                ))
            })?;
        if log && (start <= 0.0 || stop <= 0.0) {
            return Err(DriverError::value(
                "a logarithmic sweep needs a start and a stop above 0",
            ));
        }
        if !(measurement_speed.is_finite() && (8e-6..=2.0).contains(&measurement_speed)) {
            return Err(DriverError::value(format!(
                "measurement_speed (the aperture) must be between 8e-6 and 2 s, not {measurement_speed}"
            )));
        }
        let (n, list) = Self::channel(channel)?;
        let scpi = self.scpi()?;
        scpi.write("*RST")?;
        scpi.write(&format!(":SOUR{n}:FUNC:MODE {source}"))?;
        scpi.write(&format!(":SOUR{n}:{source}:MODE SWE"))?;
        scpi.write(&format!(
            ":SOUR:SWE:SPAC {}",
            if log { "LOG" } else { "LIN" }
        ))?;
        scpi.write(&format!(":SOUR{n}:{source}:STAR {start}"))?;
        scpi.write(&format!(":SOUR{n}:{source}:STOP {stop}"))?;
        scpi.write(&format!(":SOUR{n}:{source}:POIN {points}"))?;
        scpi.write(&format!(":SENS{n}:FUNC \"{sense}\""))?;
        scpi.write(&format!(":SENS{n}:{sense}:APER {measurement_speed}"))?;
        scpi.write(&format!(":SENS{n}:{sense}:PROT {compliance}"))?;
        scpi.write(":TRIG:SOUR AINT")?;
        scpi.write(&format!(":TRIG:COUN {points}"))?;
        scpi.check()?;
        scpi.write(":OUTP ON")?;
        let ran = scpi
            .write(&format!(":INIT {list}"))
            .and_then(|()| scpi.wait_complete(OPERATION_TIMEOUT));
        let off = scpi.write(":OUTP OFF");
        ran?;
        off?;
        let reply = scpi.query(&format!(":FETC:ARR:{sense}? {list}"))?;
        scpi.check()?;
        let values: Vec<f64> = reply
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                DriverError::connection(format!(
                    "garbled sweep data from the SMU: {:?}",
                    reply.chars().take(80).collect::<String>()
                ))
            })?;
        if values.len() != points {
            return Err(DriverError::connection(format!(
                "the SMU returned {} of the sweep's {points} points",
                values.len()
            )));
        }
        Ok(values)
    }
}

/// Drives a Keysight B2900 source-measure unit over SCPI on the network
/// (PyroLab's B2900, with timeouts, checked values and the instrument's
/// errors).
#[service(name = "B2900")]
impl B2900 {
    #[constructor]
    pub fn new(parameters: Parameters) -> Result<Self> {
        let timeout_ms = parameters.timeout.unwrap_or(DEFAULT_TIMEOUT_MS);
        let session = Session::new("an SMU", 5025, timeout_ms)?;
        Ok(B2900 {
            parameters,
            session,
        })
    }

    /// Network device detection is not supported (as in PyroLab): an
    /// empty list.
    pub fn detect_devices(&self) -> Vec<String> {
        Vec::new()
    }

    /// Connects to the SMU at `address` (its IP address or host name, port
    /// 5025, or a whole VISA resource) and resets it, as PyroLab does
    /// (`*RST;*CLS`, the display on). `timeout` in milliseconds. Returns
    /// True.
    pub fn connect(&mut self, address: Option<String>, timeout: Option<f64>) -> Result<bool> {
        let default = self.parameters.address.clone();
        let address = self.session.connect_to(
            address,
            default.as_deref(),
            timeout,
            &["*RST;*CLS", ":DISP:ENAB ON"],
        )?;
        tracing::info!(%address, "connected to the B2900");
        Ok(true)
    }

    /// Connects with the service's parameters.
    pub fn autoconnect(&mut self) -> Result<bool> {
        self.connect(None, None)
    }

    /// Closes the connection.
    pub fn close(&mut self) {
        if self.session.close() {
            tracing::info!("disconnected from the B2900");
        }
    }

    // `timeout`, `query`, `write`, `write_block`, `wait_for_device`:
    // PyroLab's network-instrument methods. Their behaviour is
    // instrument-io's `Session`; each class lists them only because
    // `#[service]` exposes a class's own methods.

    /// The reply timeout, in milliseconds.
    #[getter]
    pub fn timeout(&self) -> f64 {
        self.session.timeout_ms()
    }

    /// Sets the reply timeout, in milliseconds.
    #[setter]
    pub fn set_timeout(&mut self, ms: f64) -> Result<()> {
        self.session.set_timeout_ms(ms)
    }

    /// Sends `message` and returns the reply. `delay` (seconds) is waited
    /// between the two, as PyroLab's does.
    pub fn query(&mut self, message: String, delay: Option<f64>) -> Result<String> {
        self.session.query(&message, delay)
    }

    /// Sends `message`. `termination` replaces the line's `\n`;
    /// `encoding` must be ASCII or UTF-8 (as the SMU reads).
    pub fn write(
        &mut self,
        message: String,
        termination: Option<String>,
        encoding: Option<String>,
    ) -> Result<()> {
        self.session
            .write(&message, termination.as_deref(), encoding.as_deref())
    }

    /// Sends `message`, waits until the SMU is done (`*OPC?`) and checks
    /// its error queue: the SMU's own error when it refused it.
    pub fn write_block(&mut self, message: String) -> Result<()> {
        self.session.write_block(&message)
    }

    /// Waits until the last operation is complete.
    pub fn wait_for_device(&mut self) -> Result<()> {
        self.session.wait_for_device()
    }

    /// A spot measurement of current (A) at `voltage` (V), the current
    /// limited at `compliance` (A).
    pub fn measure_current(
        &mut self,
        voltage: f64,
        compliance: f64,
        #[default(2.0)] power_line_cycles: f64,
        #[default(0)] channel: i64,
    ) -> Result<f64> {
        Self::check_level("voltage", voltage, MAX_VOLTAGE, "V")?;
        Self::check_limit("compliance", compliance, MAX_CURRENT, "A")?;
        self.spot(
            "VOLT",
            "CURR",
            voltage,
            compliance,
            power_line_cycles,
            channel,
        )
    }

    /// A spot measurement of voltage (V) at `current` (A), the voltage
    /// limited at `compliance` (V).
    pub fn measure_voltage(
        &mut self,
        current: f64,
        compliance: f64,
        #[default(2.0)] power_line_cycles: f64,
        #[default(0)] channel: i64,
    ) -> Result<f64> {
        Self::check_level("current", current, MAX_CURRENT, "A")?;
        Self::check_limit("compliance", compliance, MAX_VOLTAGE, "V")?;
        self.spot(
            "CURR",
            "VOLT",
            current,
            compliance,
            power_line_cycles,
            channel,
        )
    }

    /// Toggles the display's color scheme.
    pub fn toggle_colors(&mut self) -> Result<()> {
        let scpi = self.scpi()?;
        let color: i64 = scpi.query_parsed(":DISP:CSET?")?;
        scpi.write(&format!(":DISP:CSET {}", color % 2 + 1))
    }

    /// A staircase sweep of voltage from `start` to `stop` (V) in `steps`
    /// points, measuring the current (A, limited at `compliance`) at each,
    /// `measurement_speed` the aperture (s); streamed.
    #[allow(clippy::too_many_arguments)]
    pub fn sweep_voltage(
        &mut self,
        start: f64,
        stop: f64,
        steps: i64,
        compliance: f64,
        measurement_speed: f64,
        #[default(0)] channel: i64,
        #[default(false)] log: bool,
    ) -> Result<impl Iterator<Item = f64> + Send + 'static> {
        Self::check_level("start", start, MAX_VOLTAGE, "V")?;
        Self::check_level("stop", stop, MAX_VOLTAGE, "V")?;
        Self::check_limit("compliance", compliance, MAX_CURRENT, "A")?;
        let values = self.sweep(
            "VOLT",
            "CURR",
            (start, stop, steps),
            compliance,
            measurement_speed,
            channel,
            log,
        )?;
        Ok(values.into_iter())
    }

    /// A staircase sweep of current from `start` to `stop` (A), measuring
    /// the voltage (V, limited at `compliance`); streamed.
    #[allow(clippy::too_many_arguments)]
    pub fn sweep_current(
        &mut self,
        start: f64,
        stop: f64,
        steps: i64,
        compliance: f64,
        measurement_speed: f64,
        #[default(0)] channel: i64,
        #[default(false)] log: bool,
    ) -> Result<impl Iterator<Item = f64> + Send + 'static> {
        Self::check_level("start", start, MAX_CURRENT, "A")?;
        Self::check_level("stop", stop, MAX_CURRENT, "A")?;
        Self::check_limit("compliance", compliance, MAX_VOLTAGE, "V")?;
        let values = self.sweep(
            "CURR",
            "VOLT",
            (start, stop, steps),
            compliance,
            measurement_speed,
            channel,
            log,
        )?;
        Ok(values.into_iter())
    }

    /// A screenshot of the SMU's display as an image (`form`: PNG, JPG,
    /// BMP or WMF).
    pub fn screenshot(&mut self, #[default("PNG")] form: String) -> Result<Bytes> {
        let form = form.to_ascii_uppercase();
        if !matches!(form.as_str(), "PNG" | "JPG" | "BMP" | "WMF") {
            return Err(DriverError::value(format!(
                "form must be PNG, JPG, BMP or WMF, not {form:?}"
            )));
        }
        let scpi = self.scpi()?;
        scpi.write(&format!("HCOP:SDUM:FORM {form}"))?;
        scpi.wait_complete(OPERATION_TIMEOUT)?;
        scpi.check()?;
        let image = scpi.query_block("HCOP:SDUM:DATA?")?;
        scpi.check()?;
        Ok(Bytes::from(image))
    }
}

export_plugin!(B2900);
