//! VISA resource strings, as PyroLab configurations write them for pyvisa:
//! `TCPIP0::10.0.0.5::5025::SOCKET` (a raw socket),
//! `TCPIP0::10.0.0.5::inst0::INSTR` (VXI-11), `ASRL/dev/ttyUSB0::INSTR`
//! and `ASRL3::INSTR` (a serial port).

use std::fmt;

use pyrolab_plugin_api::DriverError;

/// Where an instrument is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A raw TCP socket (`TCPIP::HOST::PORT::SOCKET`).
    Socket {
        /// Host name or address.
        host: String,
        /// TCP port (5025 for most SCPI instruments).
        port: u16,
    },
    /// A VXI-11 instrument (`TCPIP::HOST[::DEVICE][::INSTR]`).
    Vxi11 {
        /// Host name or address.
        host: String,
        /// The LAN device name (`inst0` by default; `gpib0,5` behind a
        /// LAN-to-GPIB gateway).
        device: String,
    },
    /// A serial port (`ASRL/dev/ttyUSB0::INSTR`, `ASRL3::INSTR` for COM3).
    Serial {
        /// The device path (`/dev/ttyUSB0`) or name (`COM3`).
        port: String,
    },
}

impl Resource {
    /// Parses a VISA resource string. Keywords are case-insensitive, as
    /// in VISA; `GPIB`, `USB` and `PXI` resources need a vendor's VISA
    /// library and are refused with that reason.
    pub fn parse(text: &str) -> Result<Resource, DriverError> {
        let invalid =
            |why: &str| DriverError::value(format!("invalid VISA resource {text:?}: {why}"));
        let parts: Vec<&str> = text.trim().split("::").collect();
        let head = parts[0].to_ascii_uppercase();
        let class = parts.last().map(|p| p.to_ascii_uppercase());
        if let Some(rest) = head.strip_prefix("TCPIP") {
            board(rest).ok_or_else(|| invalid("TCPIP takes a board number, as TCPIP0"))?;
            let host = parts.get(1).filter(|h| !h.is_empty()).ok_or_else(|| {
                invalid("no host: write TCPIP0::HOST::PORT::SOCKET or TCPIP0::HOST::inst0::INSTR")
            })?;
            return match (parts.len(), class.as_deref()) {
                (4, Some("SOCKET")) => {
                    let port =
                        parts[2]
                            .parse()
                            .ok()
                            .filter(|port| *port != 0)
                            .ok_or_else(|| {
                                invalid("the SOCKET port must be a number from 1 to 65535")
                            })?;
                    Ok(Resource::Socket {
                        host: (*host).to_owned(),
                        port,
                    })
                }
                (2, _) | (3, Some("INSTR")) => Ok(Resource::Vxi11 {
                    host: (*host).to_owned(),
                    device: "inst0".to_owned(),
                }),
                (3, _) => Ok(Resource::Vxi11 {
                    host: (*host).to_owned(),
                    device: parts[2].to_owned(),
                }),
                (4, Some("INSTR")) if !parts[2].is_empty() => Ok(Resource::Vxi11 {
                    host: (*host).to_owned(),
                    device: parts[2].to_owned(),
                }),
                _ => Err(invalid(
                    "expected TCPIP0::HOST::PORT::SOCKET or TCPIP0::HOST[::DEVICE]::INSTR",
                )),
            };
        }
        if parts[0]
            .get(..4)
            .is_some_and(|k| k.eq_ignore_ascii_case("ASRL"))
        {
            let port = &parts[0][4..];
            if !(parts.len() == 1 || (parts.len() == 2 && class.as_deref() == Some("INSTR"))) {
                return Err(invalid("expected ASRL/dev/ttyUSB0::INSTR or ASRL3::INSTR"));
            }
            let port = match port.parse::<u32>() {
                // ASRL3 is COM3 on Windows, /dev/ttyS2 elsewhere (pyvisa-py's reading).
                Ok(n) if cfg!(windows) => format!("COM{n}"),
                Ok(n) => format!("/dev/ttyS{}", n.saturating_sub(1)),
                Err(_) if !port.is_empty() => port.to_owned(),
                Err(_) => return Err(invalid("no serial port after ASRL")),
            };
            return Ok(Resource::Serial { port });
        }
        for needs_visa in ["GPIB", "USB", "PXI", "VXI"] {
            if head.starts_with(needs_visa) {
                return Err(invalid(&format!(
                    "{needs_visa} resources need a vendor's VISA library; pyrolab-host speaks TCPIP (SOCKET and VXI-11 INSTR) and ASRL (serial) itself"
                )));
            }
        }
        Err(invalid("expected a TCPIP or ASRL resource"))
    }
}

/// The board number after `TCPIP` (empty means 0).
fn board(rest: &str) -> Option<u32> {
    if rest.is_empty() {
        Some(0)
    } else {
        rest.parse().ok()
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Socket { host, port } => write!(f, "TCPIP0::{host}::{port}::SOCKET"),
            Resource::Vxi11 { host, device } => write!(f, "TCPIP0::{host}::{device}::INSTR"),
            Resource::Serial { port } => write!(f, "ASRL{port}::INSTR"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Resource {
        Resource::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    #[test]
    fn pyrolab_s_resource_strings_parse() {
        assert_eq!(
            parse("TCPIP0::10.32.112.162::5025::SOCKET"),
            Resource::Socket {
                host: "10.32.112.162".into(),
                port: 5025
            }
        );
        assert_eq!(
            parse("TCPIP::scope.lab::INSTR"),
            Resource::Vxi11 {
                host: "scope.lab".into(),
                device: "inst0".into()
            }
        );
        assert_eq!(
            parse("tcpip0::10.0.0.5::inst1::instr"),
            Resource::Vxi11 {
                host: "10.0.0.5".into(),
                device: "inst1".into()
            }
        );
        assert_eq!(
            parse("TCPIP0::10.0.0.5::gpib0,5::INSTR"),
            Resource::Vxi11 {
                host: "10.0.0.5".into(),
                device: "gpib0,5".into()
            }
        );
        assert_eq!(
            parse("TCPIP0::10.0.0.5"),
            Resource::Vxi11 {
                host: "10.0.0.5".into(),
                device: "inst0".into()
            }
        );
        assert_eq!(
            parse("ASRL/dev/ttyUSB0::INSTR"),
            Resource::Serial {
                port: "/dev/ttyUSB0".into()
            }
        );
        if !cfg!(windows) {
            assert_eq!(
                parse("ASRL3::INSTR"),
                Resource::Serial {
                    port: "/dev/ttyS2".into()
                }
            );
        }
    }

    #[test]
    fn what_it_cannot_reach_is_refused_with_the_reason() {
        for (text, says) in [
            ("TCPIP0::host::notaport::SOCKET", "port must be a number"),
            ("TCPIP0::host::0::SOCKET", "port must be a number"),
            ("TCPIP0::::5025::SOCKET", "no host"),
            ("GPIB0::5::INSTR", "need a vendor's VISA library"),
            (
                "USB0::0x0957::0x8C18::MY123::INSTR",
                "need a vendor's VISA library",
            ),
            ("nonsense", "expected a TCPIP or ASRL resource"),
            ("ASRL::INSTR", "no serial port"),
        ] {
            let err = Resource::parse(text).expect_err(text);
            assert!(err.message().contains(says), "{text}: {err}");
            assert_eq!(err.kind(), pyrolab_plugin_api::ErrorKind::ValueError);
        }
    }
}
