//! Driver for the Rohde & Schwarz RTO oscilloscopes (RTO1000, RTO2000),
//! over SCPI on the network (the scope's socket, port 5025, or VXI-11),
//! with no VISA library.
//!
//! The class is `RTO`, with PyroLab's methods and arguments (`module:
//! pyrolab.drivers.scopes.rohdeschwarz`). Differences from PyroLab's
//! driver (docs/rohdeschwarz.md): `connect(address)` takes a host (its
//! socket) or a whole VISA resource, and refuses `hislip=True` with the
//! reason; values are checked before anything is sent (`ValueError`);
//! `get_data` returns numbers in every form (volts for `ascii` and `real`,
//! ADC codes for `int8` and `int16`, where PyroLab returns the reply's
//! text); `screenshot()` returns the PNG as bytes (PyroLab writes it to a
//! path on the machine running the driver); and it adds `get_waveform`
//! (the samples as raw bytes, the fast way to move a long record),
//! `waveform_header` and `record_length`.
//!
//! Parameters (all optional): `address` (host or VISA resource),
//! `timeout` (milliseconds, 1000 as PyroLab's), `portmapper_port` (where a
//! VXI-11 host's portmapper listens: 111; another only for a simulator).

use instrument_io::Session;
use instrument_io::session::OPERATION_TIMEOUT;
use pyrolab_plugin_api::prelude::*;
use pyrolab_plugin_api::tracing;

/// The service's `parameters:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub portmapper_port: Option<u16>,
}

/// Where the scope saves a screenshot before sending it (PyroLab's path).
const SCREENSHOT_PATH: &str = "'C:\\temp\\Last_Screenshot.png'";

/// A waveform's sample format (`FORM`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Ascii,
    Real,
    Int8,
    Int16,
}

impl Form {
    fn parse(form: &str) -> Result<Form> {
        match form.to_ascii_lowercase().as_str() {
            "ascii" => Ok(Form::Ascii),
            "real" => Ok(Form::Real),
            "int8" => Ok(Form::Int8),
            "int16" => Ok(Form::Int16),
            _ => Err(DriverError::value(format!(
                "form must be ascii, real, int8 or int16, not {form:?}"
            ))),
        }
    }

    fn command(self) -> &'static str {
        match self {
            Form::Ascii => "ASC",
            Form::Real => "REAL,32",
            Form::Int8 => "INT,8",
            Form::Int16 => "INT,16",
        }
    }

    /// Bytes per sample in the binary forms.
    fn width(self) -> usize {
        match self {
            Form::Ascii | Form::Real => 4,
            Form::Int8 => 1,
            Form::Int16 => 2,
        }
    }
}

fn check_channel(channel: i64) -> Result<()> {
    if (1..=4).contains(&channel) {
        Ok(())
    } else {
        Err(DriverError::value(format!(
            "channel must be 1 to 4, not {channel}"
        )))
    }
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

/// `value` if it is one of `allowed` (any case), in upper case.
fn one_of(what: &str, value: &str, allowed: &[&str]) -> Result<String> {
    let upper = value.to_ascii_uppercase();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(&upper)) {
        Ok(upper)
    } else {
        Err(DriverError::value(format!(
            "{what} must be one of {}, not {value:?}",
            allowed.join(", ")
        )))
    }
}

/// The Rohde & Schwarz RTO.
pub struct Rto {
    parameters: Parameters,
    session: Session,
}

impl Rto {
    /// The samples of `channel` in `form`, as the scope sends them: the
    /// binary block's bytes (little-endian), or the ASCII reply's text.
    fn samples(&mut self, channel: i64, form: Form) -> Result<Vec<u8>> {
        check_channel(channel)?;
        let scpi = self.session.scpi()?;
        scpi.write("FORM:BORD LSBF")?;
        let command = format!("FORM {};:CHAN{channel}:DATA?", form.command());
        let data = if form == Form::Ascii {
            scpi.transport().clear()?;
            scpi.write(&command)?;
            let max = scpi.max_block;
            let terminator = scpi.read_termination;
            scpi.transport().read_until(terminator, max)?
        } else {
            scpi.query_block(&command)?
        };
        // An empty record (a channel off) comes with the scope's reason.
        scpi.check()
            .map_err(|err| err.context(format!("after {command:?}")))?;
        if data.len() % form.width() != 0 && form != Form::Ascii {
            return Err(DriverError::connection(format!(
                "garbled waveform from {}: {} bytes is not a whole number of {}-byte samples",
                scpi.resource(),
                data.len(),
                form.width()
            )));
        }
        Ok(data)
    }
}

/// Drives a Rohde & Schwarz RTO oscilloscope over SCPI (PyroLab's RTO,
/// with timeouts, checked values, the instrument's errors, and waveforms
/// as bytes).
#[service(name = "RTO")]
impl Rto {
    #[constructor]
    pub fn new(parameters: Parameters) -> Result<Self> {
        let mut session = Session::new(
            "an oscilloscope",
            5025,
            parameters.timeout.unwrap_or(1000.0),
        )?;
        if let Some(port) = parameters.portmapper_port {
            session.set_portmapper_port(port);
        }
        Ok(Rto {
            parameters,
            session,
        })
    }

    /// Network device detection is not supported (as in PyroLab).
    pub fn detect_devices(&self) -> Vec<String> {
        Vec::new()
    }

    /// Connects to the scope at `address` (host, port 5025, or a VISA
    /// resource) and resets it (`*RST;*CLS`, `SYST:DISP:UPD ON`), as
    /// PyroLab does. Returns True. HiSLIP is not spoken.
    pub fn connect(
        &mut self,
        address: Option<String>,
        #[default(false)] hislip: bool,
        timeout: Option<f64>,
    ) -> Result<bool> {
        if hislip {
            return Err(DriverError::value(
                "HiSLIP is not supported: give the scope's host (its socket, port 5025) \
                 or a VISA resource (TCPIP0::HOST::inst0::INSTR for VXI-11)",
            ));
        }
        let default = self.parameters.address.clone();
        let address = self.session.connect_to(
            address,
            default.as_deref(),
            timeout,
            &["*RST;*CLS", "SYST:DISP:UPD ON"],
        )?;
        tracing::info!(%address, "connected to the RTO");
        Ok(true)
    }

    /// Connects with the service's parameters.
    pub fn autoconnect(&mut self) -> Result<bool> {
        self.connect(None, false, None)
    }

    /// Closes the connection.
    pub fn close(&mut self) {
        self.session.close();
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

    /// Sends `message` and returns the reply line, after `delay` seconds.
    pub fn query(&mut self, message: String, delay: Option<f64>) -> Result<String> {
        self.session.query(&message, delay)
    }

    /// Sends `message`.
    pub fn write(
        &mut self,
        message: String,
        termination: Option<String>,
        encoding: Option<String>,
    ) -> Result<()> {
        self.session
            .write(&message, termination.as_deref(), encoding.as_deref())
    }

    /// Sends `message`, waits until it is done and checks the error queue.
    pub fn write_block(&mut self, message: String) -> Result<()> {
        self.session.write_block(&message)
    }

    /// Waits until the operations in progress are done (`*OPC?`), an
    /// acquisition included: at most `timeout` ms (ours; 60 s when not
    /// given), a `TimeoutError` after it (a trigger that never came:
    /// `acquire(run="stop")` ends the acquisition).
    pub fn wait_for_device(&mut self, timeout: Option<f64>) -> Result<()> {
        let limit = match timeout {
            None => OPERATION_TIMEOUT,
            Some(ms) => {
                check_range("timeout", ms, 1.0, 3_600_000.0, "ms")?;
                std::time::Duration::from_secs_f64(ms / 1000.0)
            }
        };
        self.session.scpi()?.wait_complete(limit)
    }

    /// The sample rate (Sa/s) and the record's duration (s); the record
    /// length is their product and must fit the scope's memory (its
    /// `-222,"Data out of range"` otherwise).
    pub fn acquisition_settings(
        &mut self,
        sample_rate: f64,
        duration: f64,
        #[default(false)] force_realtime: bool,
    ) -> Result<()> {
        check_range("sample_rate", sample_rate, 2.0, 20e12, "Sa/s")?;
        check_range("duration", duration, 250e-12, 100_000.0, "s")?;
        if force_realtime {
            self.session.write_block("ACQ:MODE RTIM")?;
        }
        self.session.write_block(&format!(
            "ACQ:POIN:AUTO RES;:TIM:RANG {duration};:ACQ:SRAT {sample_rate}"
        ))
    }

    /// Configures a channel: on or off, coupling (DC, DCLimit, AC), the
    /// vertical range (V over the 10 divisions), position (divisions),
    /// offset (V) and inversion.
    #[allow(clippy::too_many_arguments)]
    pub fn set_channel(
        &mut self,
        channel: i64,
        #[default("ON")] state: String,
        #[default("DCLimit")] coupling: String,
        #[default(0.5)] range: f64,
        #[default(0.0)] position: f64,
        #[default(0.0)] offset: f64,
        #[default("OFF")] invert: String,
    ) -> Result<()> {
        check_channel(channel)?;
        let state = one_of("state", &state, &["ON", "OFF"])?;
        let coupling = one_of("coupling", &coupling, &["DC", "DCLimit", "DCL", "AC"])?;
        check_range("range", range, 0.01, 100.0, "V")?;
        check_range("position", position, -5.0, 5.0, "divisions")?;
        check_range("offset", offset, -115.0, 115.0, "V")?;
        let invert = one_of("invert", &invert, &["ON", "OFF"])?;
        self.session.write_block(&format!(
            "CHAN{channel}:STAT {state}; COUP {coupling};RANG {range};POS {position};OFFS {offset}; INV {invert}"
        ))
    }

    /// An edge trigger (positive slope) on `channel` at `voltage`; `mode`
    /// AUTO, NORM or FREerun. In NORM mode a level the signal never
    /// crosses holds an acquisition until it is stopped.
    pub fn edge_trigger(
        &mut self,
        channel: i64,
        voltage: f64,
        #[default("NORM")] mode: String,
    ) -> Result<()> {
        check_channel(channel)?;
        check_range("voltage", voltage, -50.0, 50.0, "V")?;
        let mode = one_of("mode", &mode, &["AUTO", "NORM", "NORMal", "FREerun", "FRE"])?;
        self.session.write_block(&format!(
            "TRIG1:MODE {mode};SOUR CHAN{channel};TYPE EDGE;LEV{channel} {voltage};EDGE:SLOP POS"
        ))
    }

    /// Starts an acquisition (`run`: single, continuous, or stop) and
    /// returns at once; `wait_for_device()` waits for a single one.
    /// `timeout` (ms) is accepted for PyroLab's scripts and, as there,
    /// changes nothing after the call.
    pub fn acquire(
        &mut self,
        #[default(-1)] timeout: i64,
        #[default("single")] run: String,
    ) -> Result<()> {
        let _ = timeout;
        let command = match run.as_str() {
            "single" => "SING",
            "continuous" => "RUN",
            "stop" => "STOP",
            other => {
                return Err(DriverError::value(format!(
                    "{other} is not a valid argument: run must be single, continuous or stop"
                )));
            }
        };
        self.session.write(command, None, None)
    }

    /// The horizontal scale, s per division (25e-12 to 10000).
    pub fn set_timescale(&mut self, time: f64) -> Result<()> {
        check_range("time", time, 25e-12, 10_000.0, "s/div")?;
        let scpi = self.session.scpi()?;
        scpi.write_checked(&format!("TIM:SCAL {time}"))
    }

    /// Sets measurement `measurement` (1-8) on `source` (`C1W1`...) of
    /// type `meastype` (MAX, MIN, HIGH, LOW, AMPLitude, MEAN, RMS...).
    pub fn set_auto_measurement(
        &mut self,
        #[default(1)] measurement: i64,
        #[default("C1W1")] source: String,
        #[default("MAX")] meastype: String,
    ) -> Result<()> {
        if !(1..=8).contains(&measurement) {
            return Err(DriverError::value(format!(
                "measurement must be 1 to 8, not {measurement}"
            )));
        }
        let scpi = self.session.scpi()?;
        scpi.write(&format!("MEAS{measurement}:SOUR {source}"))?;
        scpi.write(&format!("MEAS{measurement}:MAIN {meastype}"))?;
        scpi.write_checked(&format!("MEAS{measurement} ON"))
    }

    /// The result of measurement `measurement`.
    pub fn measure(&mut self, #[default(1)] measurement: i64) -> Result<f64> {
        if !(1..=8).contains(&measurement) {
            return Err(DriverError::value(format!(
                "measurement must be 1 to 8, not {measurement}"
            )));
        }
        self.session
            .scpi()?
            .query_parsed(&format!("MEAS{measurement}:RES:ACT?"))
    }

    /// The waveform of `channel` as a list: volts for `ascii` and `real`
    /// (32-bit floats on the wire), ADC codes for `int8` and `int16`.
    pub fn get_data(&mut self, channel: i64, #[default("ascii")] form: String) -> Result<Value> {
        let form = Form::parse(&form)?;
        let data = self.samples(channel, form)?;
        let values: Vec<Value> = match form {
            Form::Ascii => {
                let text = String::from_utf8_lossy(&data);
                let text = text.trim();
                if text.is_empty() {
                    Vec::new()
                } else {
                    text.split(',')
                        .map(|v| {
                            v.trim().parse::<f64>().map(Value::Float).map_err(|_| {
                                DriverError::connection(format!(
                                    "garbled waveform: {:?} is not a number",
                                    v.chars().take(40).collect::<String>()
                                ))
                            })
                        })
                        .collect::<Result<_>>()?
                }
            }
            Form::Real => data
                .chunks_exact(4)
                .map(|b| Value::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))))
                .collect(),
            Form::Int8 => data
                .iter()
                .map(|b| Value::Int(i64::from(*b as i8)))
                .collect(),
            Form::Int16 => data
                .chunks_exact(2)
                .map(|b| Value::Int(i64::from(i16::from_le_bytes([b[0], b[1]]))))
                .collect(),
        };
        Ok(Value::List(values))
    }

    /// The waveform of `channel` as raw bytes (ours): `int8` one byte a
    /// sample, `int16` two and `real` four (little-endian), as the scope
    /// sends them; the fast way to move a long record.
    pub fn get_waveform(&mut self, channel: i64, #[default("int8")] form: String) -> Result<Bytes> {
        let form = Form::parse(&form)?;
        if form == Form::Ascii {
            return Err(DriverError::value(
                "get_waveform sends binary forms (int8, int16, real): use get_data for ascii",
            ));
        }
        Ok(Bytes::from(self.samples(channel, form)?))
    }

    /// The last record's time axis (ours): `{"start": s, "stop": s,
    /// "length": samples}`.
    pub fn waveform_header(&mut self, channel: i64) -> Result<Value> {
        check_channel(channel)?;
        let reply = self
            .session
            .query(&format!("CHAN{channel}:DATA:HEAD?"), None)?;
        let fields: Vec<&str> = reply.trim().split(',').collect();
        let parsed = (|| {
            let start: f64 = fields.first()?.trim().parse().ok()?;
            let stop: f64 = fields.get(1)?.trim().parse().ok()?;
            let length: i64 = fields.get(2)?.trim().parse().ok()?;
            Some((start, stop, length))
        })();
        let (start, stop, length) = parsed.ok_or_else(|| {
            DriverError::connection(format!("garbled waveform header: {reply:?}"))
        })?;
        Ok(Value::Map(vec![
            ("start".into(), start.into()),
            ("stop".into(), stop.into()),
            ("length".into(), length.into()),
        ]))
    }

    /// The samples in a record with the present settings (ours).
    pub fn record_length(&mut self) -> Result<i64> {
        self.session.scpi()?.query_parsed("ACQ:POIN?")
    }

    /// A screenshot of the scope's display, as PNG bytes (PyroLab's
    /// `screenshot(path)` writes it to a file on the driver's machine;
    /// `path` is accepted and not used).
    pub fn screenshot(&mut self, path: Option<String>) -> Result<Bytes> {
        let _ = path;
        let scpi = self.session.scpi()?;
        scpi.write("HCOP:DEV:LANG PNG")?;
        scpi.write(&format!("MMEM:NAME {SCREENSHOT_PATH}"))?;
        scpi.write("HCOP:IMM")?;
        scpi.wait_complete(OPERATION_TIMEOUT)?;
        scpi.check()?;
        let image = scpi.query_block(&format!("MMEM:DATA? {SCREENSHOT_PATH}"))?;
        scpi.check()?;
        Ok(Bytes::from(image))
    }

    /// Switches the low-pass filter of `channel` on.
    pub fn act_filter(&mut self, channel: i64) -> Result<()> {
        check_channel(channel)?;
        self.session
            .write(&format!("CHAN{channel}:DIGF:STAT ON"), None, None)
    }

    /// Switches the low-pass filter of `channel` off.
    pub fn deact_filter(&mut self, channel: i64) -> Result<()> {
        check_channel(channel)?;
        self.session
            .write(&format!("CHAN{channel}:DIGF:STAT OFF"), None, None)
    }

    /// The filter's cutoff (1e5 to 2e9 Hz, rounded by the scope to the
    /// nearest it has), for channels 1 and 2 or 3 and 4 together.
    pub fn set_cutoff_freq(&mut self, channel: i64, cutoff_freq: f64) -> Result<()> {
        check_channel(channel)?;
        if !(1e5..=2e9).contains(&cutoff_freq) {
            return Err(DriverError::value(
                "Cutoff frequency must be between 1e5 and 2e9 Hz",
            ));
        }
        self.session
            .write(&format!("CHAN{channel}:DIGF:CUT {cutoff_freq}"), None, None)
    }
}

export_plugin!(Rto);
