//! The APT protocol as the KDC101 speaks it (Thorlabs Motion Controllers
//! Host-Controller Communications Protocol): message framing, the ids this
//! driver sends and receives, and the layouts of their data.
//!
//! Every message starts with a 6-byte header: the message id (u16, little
//! endian), then either two parameter bytes, or (with the destination's
//! top bit set) the length of the data that follows; then the destination
//! and the source address. The host is 0x01, a single-channel USB
//! controller 0x50. All numbers are little endian.

use std::fmt;

/// The host's address.
pub const HOST: u8 = 0x01;
/// A single-channel USB controller's address (a K-Cube).
pub const USB_UNIT: u8 = 0x50;
/// Set on the destination when data follows the header.
pub const DATA_FLAG: u8 = 0x80;
/// The header's length.
pub const HEADER_LEN: usize = 6;
/// The K-Cube's one channel.
pub const CHANNEL: u16 = 1;

/// Message ids.
pub mod id {
    pub const HW_DISCONNECT: u16 = 0x0002;
    pub const HW_REQ_INFO: u16 = 0x0005;
    pub const HW_GET_INFO: u16 = 0x0006;
    pub const HW_START_UPDATEMSGS: u16 = 0x0011;
    pub const HW_STOP_UPDATEMSGS: u16 = 0x0012;
    pub const HW_NO_FLASH_PROGRAMMING: u16 = 0x0018;
    pub const HW_RESPONSE: u16 = 0x0080;
    pub const HW_RICHRESPONSE: u16 = 0x0081;
    pub const MOD_SET_CHANENABLESTATE: u16 = 0x0210;
    pub const MOD_REQ_CHANENABLESTATE: u16 = 0x0211;
    pub const MOD_GET_CHANENABLESTATE: u16 = 0x0212;
    pub const MOD_IDENTIFY: u16 = 0x0223;
    pub const MOT_GET_ENCCOUNTER: u16 = 0x040B;
    pub const MOT_GET_POSCOUNTER: u16 = 0x0412;
    pub const MOT_SET_VELPARAMS: u16 = 0x0413;
    pub const MOT_REQ_VELPARAMS: u16 = 0x0414;
    pub const MOT_GET_VELPARAMS: u16 = 0x0415;
    pub const MOT_SET_JOGPARAMS: u16 = 0x0416;
    pub const MOT_REQ_JOGPARAMS: u16 = 0x0417;
    pub const MOT_GET_JOGPARAMS: u16 = 0x0418;
    pub const MOT_GET_LIMSWITCHPARAMS: u16 = 0x0425;
    pub const MOT_GET_STATUSBITS: u16 = 0x042A;
    pub const MOT_SET_GENMOVEPARAMS: u16 = 0x043A;
    pub const MOT_REQ_GENMOVEPARAMS: u16 = 0x043B;
    pub const MOT_GET_GENMOVEPARAMS: u16 = 0x043C;
    pub const MOT_SET_HOMEPARAMS: u16 = 0x0440;
    pub const MOT_REQ_HOMEPARAMS: u16 = 0x0441;
    pub const MOT_GET_HOMEPARAMS: u16 = 0x0442;
    pub const MOT_MOVE_HOME: u16 = 0x0443;
    pub const MOT_MOVE_HOMED: u16 = 0x0444;
    pub const MOT_GET_MOVERELPARAMS: u16 = 0x0447;
    pub const MOT_MOVE_RELATIVE: u16 = 0x0448;
    pub const MOT_GET_MOVEABSPARAMS: u16 = 0x0452;
    pub const MOT_MOVE_ABSOLUTE: u16 = 0x0453;
    pub const MOT_MOVE_VELOCITY: u16 = 0x0457;
    pub const MOT_MOVE_COMPLETED: u16 = 0x0464;
    pub const MOT_MOVE_STOP: u16 = 0x0465;
    pub const MOT_MOVE_STOPPED: u16 = 0x0466;
    pub const MOT_MOVE_JOG: u16 = 0x046A;
    pub const MOT_REQ_DCSTATUSUPDATE: u16 = 0x0490;
    pub const MOT_GET_DCSTATUSUPDATE: u16 = 0x0491;
    pub const MOT_ACK_DCSTATUSUPDATE: u16 = 0x0492;
}

/// The name of message `id`, for messages.
pub fn name(message: u16) -> String {
    use id::*;
    let name = match message {
        HW_DISCONNECT => "HW_DISCONNECT",
        HW_REQ_INFO => "HW_REQ_INFO",
        HW_GET_INFO => "HW_GET_INFO",
        HW_START_UPDATEMSGS => "HW_START_UPDATEMSGS",
        HW_STOP_UPDATEMSGS => "HW_STOP_UPDATEMSGS",
        HW_NO_FLASH_PROGRAMMING => "HW_NO_FLASH_PROGRAMMING",
        HW_RESPONSE => "HW_RESPONSE",
        HW_RICHRESPONSE => "HW_RICHRESPONSE",
        MOD_SET_CHANENABLESTATE => "MOD_SET_CHANENABLESTATE",
        MOD_REQ_CHANENABLESTATE => "MOD_REQ_CHANENABLESTATE",
        MOD_GET_CHANENABLESTATE => "MOD_GET_CHANENABLESTATE",
        MOD_IDENTIFY => "MOD_IDENTIFY",
        MOT_GET_ENCCOUNTER => "MOT_GET_ENCCOUNTER",
        MOT_GET_POSCOUNTER => "MOT_GET_POSCOUNTER",
        MOT_SET_VELPARAMS => "MOT_SET_VELPARAMS",
        MOT_REQ_VELPARAMS => "MOT_REQ_VELPARAMS",
        MOT_GET_VELPARAMS => "MOT_GET_VELPARAMS",
        MOT_SET_JOGPARAMS => "MOT_SET_JOGPARAMS",
        MOT_REQ_JOGPARAMS => "MOT_REQ_JOGPARAMS",
        MOT_GET_JOGPARAMS => "MOT_GET_JOGPARAMS",
        MOT_GET_LIMSWITCHPARAMS => "MOT_GET_LIMSWITCHPARAMS",
        MOT_GET_STATUSBITS => "MOT_GET_STATUSBITS",
        MOT_SET_GENMOVEPARAMS => "MOT_SET_GENMOVEPARAMS",
        MOT_REQ_GENMOVEPARAMS => "MOT_REQ_GENMOVEPARAMS",
        MOT_GET_GENMOVEPARAMS => "MOT_GET_GENMOVEPARAMS",
        MOT_SET_HOMEPARAMS => "MOT_SET_HOMEPARAMS",
        MOT_REQ_HOMEPARAMS => "MOT_REQ_HOMEPARAMS",
        MOT_GET_HOMEPARAMS => "MOT_GET_HOMEPARAMS",
        MOT_MOVE_HOME => "MOT_MOVE_HOME",
        MOT_MOVE_HOMED => "MOT_MOVE_HOMED",
        MOT_GET_MOVERELPARAMS => "MOT_GET_MOVERELPARAMS",
        MOT_MOVE_RELATIVE => "MOT_MOVE_RELATIVE",
        MOT_GET_MOVEABSPARAMS => "MOT_GET_MOVEABSPARAMS",
        MOT_MOVE_ABSOLUTE => "MOT_MOVE_ABSOLUTE",
        MOT_MOVE_VELOCITY => "MOT_MOVE_VELOCITY",
        MOT_MOVE_COMPLETED => "MOT_MOVE_COMPLETED",
        MOT_MOVE_STOP => "MOT_MOVE_STOP",
        MOT_MOVE_STOPPED => "MOT_MOVE_STOPPED",
        MOT_MOVE_JOG => "MOT_MOVE_JOG",
        MOT_REQ_DCSTATUSUPDATE => "MOT_REQ_DCSTATUSUPDATE",
        MOT_GET_DCSTATUSUPDATE => "MOT_GET_DCSTATUSUPDATE",
        MOT_ACK_DCSTATUSUPDATE => "MOT_ACK_DCSTATUSUPDATE",
        other => return format!("message 0x{other:04X}"),
    };
    format!("{name} (0x{message:04X})")
}

/// What follows a header the KDC101 sends: nothing, or `len` bytes. The
/// protocol document fixes both for each message; `None` for an id the
/// KDC101 never sends to the host.
fn shape_of(message: u16) -> Option<Option<usize>> {
    use id::*;
    Some(match message {
        HW_DISCONNECT | HW_RESPONSE | MOD_GET_CHANENABLESTATE | MOT_MOVE_HOMED => None,
        HW_GET_INFO => Some(84),
        HW_RICHRESPONSE => Some(68),
        MOT_GET_ENCCOUNTER
        | MOT_GET_POSCOUNTER
        | MOT_GET_STATUSBITS
        | MOT_GET_GENMOVEPARAMS
        | MOT_GET_MOVERELPARAMS
        | MOT_GET_MOVEABSPARAMS => Some(6),
        MOT_GET_VELPARAMS | MOT_GET_HOMEPARAMS => Some(14),
        MOT_GET_JOGPARAMS => Some(22),
        MOT_GET_LIMSWITCHPARAMS => Some(16),
        MOT_MOVE_COMPLETED | MOT_MOVE_STOPPED | MOT_GET_DCSTATUSUPDATE => Some(14),
        _ => return None,
    })
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub id: u16,
    pub body: Body,
}

/// A message's content: two parameter bytes, or data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Params(u8, u8),
    Data(Vec<u8>),
}

impl Frame {
    /// A header-only message.
    pub fn short(id: u16, param1: u8, param2: u8) -> Frame {
        Frame {
            id,
            body: Body::Params(param1, param2),
        }
    }

    /// A message with data: the channel, then `fields`.
    pub fn with_channel(id: u16, fields: &[&[u8]]) -> Frame {
        let mut data = CHANNEL.to_le_bytes().to_vec();
        for field in fields {
            data.extend_from_slice(field);
        }
        Frame {
            id,
            body: Body::Data(data),
        }
    }

    /// A request about the channel (`REQ_...`, with the channel in param1).
    pub fn request(id: u16) -> Frame {
        Frame::short(id, CHANNEL as u8, 0)
    }

    /// The bytes on the wire, from the host to the controller.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = self.id.to_le_bytes().to_vec();
        match &self.body {
            Body::Params(param1, param2) => bytes.extend_from_slice(&[*param1, *param2, USB_UNIT]),
            Body::Data(data) => {
                let len = u16::try_from(data.len()).expect("APT messages are short");
                bytes.extend_from_slice(&len.to_le_bytes());
                bytes.push(USB_UNIT | DATA_FLAG);
            }
        }
        bytes.push(HOST);
        if let Body::Data(data) = &self.body {
            bytes.extend_from_slice(data);
        }
        bytes
    }

    /// The data (empty for a header-only message).
    pub fn data(&self) -> &[u8] {
        match &self.body {
            Body::Data(data) => data,
            Body::Params(..) => &[],
        }
    }

    /// The second header parameter (0 for a message with data).
    pub fn param2(&self) -> u8 {
        match self.body {
            Body::Params(_, param2) => param2,
            Body::Data(_) => 0,
        }
    }
}

/// A header that cannot begin a message from a KDC101: the stream is
/// out of step, or the line carries noise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Garbled(pub String);

impl fmt::Display for Garbled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a header from the controller announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A complete header-only message.
    Short { id: u16, param1: u8, param2: u8 },
    /// A message whose `len` bytes of data follow.
    Long { id: u16, len: usize },
}

/// Checks a header from the controller: addressed from the controller to
/// the host, an id the KDC101 sends, and the data length the protocol
/// gives that id. Anything else is [`Garbled`]; checking the length before
/// reading the data is what keeps noise from making the driver wait for,
/// or read, bytes that never belonged to a message.
pub fn parse_header(header: [u8; HEADER_LEN]) -> Result<Header, Garbled> {
    let hex = || {
        header
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let message = u16::from_le_bytes([header[0], header[1]]);
    let (dest, source) = (header[4], header[5]);
    if source != USB_UNIT || dest & !DATA_FLAG != HOST {
        return Err(Garbled(format!(
            "not an APT message from the controller to the host: {}",
            hex()
        )));
    }
    let shape = shape_of(message).ok_or_else(|| {
        Garbled(format!(
            "{} is not a message a KDC101 sends (header {})",
            name(message),
            hex()
        ))
    })?;
    let has_data = dest & DATA_FLAG != 0;
    let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
    match (shape, has_data) {
        (None, false) => Ok(Header::Short {
            id: message,
            param1: header[2],
            param2: header[3],
        }),
        (Some(expected), true) if expected == len => Ok(Header::Long { id: message, len }),
        (Some(expected), _) => Err(Garbled(format!(
            "{} should carry {expected} bytes of data (header {})",
            name(message),
            hex()
        ))),
        (None, true) => Err(Garbled(format!(
            "{} carries no data (header {})",
            name(message),
            hex()
        ))),
    }
}

fn u16_at(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

fn i32_at(data: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(data[at..at + 4].try_into().expect("four bytes"))
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("four bytes"))
}

/// The status bits (`MOT_GET_DCSTATUSUPDATE`, `MOT_GET_STATUSBITS`).
pub mod bits {
    pub const FORWARD_LIMIT: u32 = 0x0000_0001;
    pub const REVERSE_LIMIT: u32 = 0x0000_0002;
    pub const MOVING_FORWARD: u32 = 0x0000_0010;
    pub const MOVING_REVERSE: u32 = 0x0000_0020;
    pub const JOGGING_FORWARD: u32 = 0x0000_0040;
    pub const JOGGING_REVERSE: u32 = 0x0000_0080;
    pub const MOTOR_CONNECTED: u32 = 0x0000_0100;
    pub const HOMING: u32 = 0x0000_0200;
    pub const HOMED: u32 = 0x0000_0400;
    pub const MOTION_ERROR: u32 = 0x0000_4000;
    pub const CURRENT_LIMIT: u32 = 0x0100_0000;
    pub const CHANNEL_ENABLED: u32 = 0x8000_0000;
    /// Any motion: moving, jogging or homing.
    pub const IN_MOTION: u32 =
        MOVING_FORWARD | MOVING_REVERSE | JOGGING_FORWARD | JOGGING_REVERSE | HOMING;
}

/// A DC status (`MOT_GET_DCSTATUSUPDATE`, also the data of
/// `MOT_MOVE_COMPLETED` and `MOT_MOVE_STOPPED`): position counter, speed
/// word, status bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DcStatus {
    pub position: i32,
    pub velocity: u16,
    pub bits: u32,
}

impl DcStatus {
    pub fn decode(data: &[u8]) -> DcStatus {
        DcStatus {
            position: i32_at(data, 2),
            velocity: u16_at(data, 6),
            bits: u32_at(data, 10),
        }
    }
}

/// Velocity parameters (`MOT_*_VELPARAMS`), in APT units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VelParams {
    pub min_velocity: i32,
    pub acceleration: i32,
    pub max_velocity: i32,
}

impl VelParams {
    pub fn decode(data: &[u8]) -> VelParams {
        VelParams {
            min_velocity: i32_at(data, 2),
            acceleration: i32_at(data, 6),
            max_velocity: i32_at(data, 10),
        }
    }

    pub fn set(&self) -> Frame {
        Frame::with_channel(
            id::MOT_SET_VELPARAMS,
            &[
                &self.min_velocity.to_le_bytes(),
                &self.acceleration.to_le_bytes(),
                &self.max_velocity.to_le_bytes(),
            ],
        )
    }
}

/// Jog modes, as `MOT_*_JOGPARAMS` number them.
pub const JOG_CONTINUOUS: u16 = 1;
pub const JOG_SINGLE_STEP: u16 = 2;
/// Stop modes (`MOT_MOVE_STOP`'s param2, the jog parameters' stop mode).
pub const STOP_IMMEDIATE: u16 = 1;
pub const STOP_PROFILED: u16 = 2;
/// Directions (`MOT_MOVE_JOG`, `MOT_MOVE_VELOCITY`).
pub const FORWARD: u8 = 1;
pub const REVERSE: u8 = 2;

/// Jog parameters (`MOT_*_JOGPARAMS`), in APT units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JogParams {
    pub mode: u16,
    pub step: i32,
    pub min_velocity: i32,
    pub acceleration: i32,
    pub max_velocity: i32,
    pub stop_mode: u16,
}

impl JogParams {
    pub fn decode(data: &[u8]) -> JogParams {
        JogParams {
            mode: u16_at(data, 2),
            step: i32_at(data, 4),
            min_velocity: i32_at(data, 8),
            acceleration: i32_at(data, 12),
            max_velocity: i32_at(data, 16),
            stop_mode: u16_at(data, 20),
        }
    }

    pub fn set(&self) -> Frame {
        Frame::with_channel(
            id::MOT_SET_JOGPARAMS,
            &[
                &self.mode.to_le_bytes(),
                &self.step.to_le_bytes(),
                &self.min_velocity.to_le_bytes(),
                &self.acceleration.to_le_bytes(),
                &self.max_velocity.to_le_bytes(),
                &self.stop_mode.to_le_bytes(),
            ],
        )
    }
}

/// Homing parameters (`MOT_*_HOMEPARAMS`), in APT units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HomeParams {
    pub direction: u16,
    pub limit_switch: u16,
    pub velocity: i32,
    pub offset: i32,
}

impl HomeParams {
    pub fn decode(data: &[u8]) -> HomeParams {
        HomeParams {
            direction: u16_at(data, 2),
            limit_switch: u16_at(data, 4),
            velocity: i32_at(data, 6),
            offset: i32_at(data, 10),
        }
    }

    pub fn set(&self) -> Frame {
        Frame::with_channel(
            id::MOT_SET_HOMEPARAMS,
            &[
                &self.direction.to_le_bytes(),
                &self.limit_switch.to_le_bytes(),
                &self.velocity.to_le_bytes(),
                &self.offset.to_le_bytes(),
            ],
        )
    }
}

/// The backlash distance (`MOT_*_GENMOVEPARAMS`), in encoder counts.
pub fn decode_backlash(data: &[u8]) -> i32 {
    i32_at(data, 2)
}

pub fn set_backlash(counts: i32) -> Frame {
    Frame::with_channel(id::MOT_SET_GENMOVEPARAMS, &[&counts.to_le_bytes()])
}

/// `MOT_MOVE_ABSOLUTE` / `MOT_MOVE_RELATIVE` with the position or distance
/// given (their long forms).
pub fn move_absolute(position: i32) -> Frame {
    Frame::with_channel(id::MOT_MOVE_ABSOLUTE, &[&position.to_le_bytes()])
}

pub fn move_relative(distance: i32) -> Frame {
    Frame::with_channel(id::MOT_MOVE_RELATIVE, &[&distance.to_le_bytes()])
}

/// What `HW_GET_INFO` says about the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HwInfo {
    pub serial_number: u32,
    pub model: String,
    pub hardware_type: u16,
    /// major, interim, minor
    pub firmware: (u8, u8, u8),
    pub hardware_version: u16,
    pub modification_state: u16,
    pub channels: u16,
}

impl HwInfo {
    pub fn decode(data: &[u8]) -> HwInfo {
        HwInfo {
            serial_number: u32_at(data, 0),
            model: text(&data[4..12]),
            hardware_type: u16_at(data, 12),
            firmware: (data[16], data[15], data[14]),
            hardware_version: u16_at(data, 78),
            modification_state: u16_at(data, 80),
            channels: u16_at(data, 82),
        }
    }

    pub fn firmware_version(&self) -> String {
        let (major, interim, minor) = self.firmware;
        format!("{major}.{interim}.{minor}")
    }
}

/// An error the controller reports (`HW_RICHRESPONSE`): the message it
/// could not carry out, a code, and its explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RichResponse {
    pub message: u16,
    pub code: u16,
    pub notes: String,
}

impl RichResponse {
    pub fn decode(data: &[u8]) -> RichResponse {
        RichResponse {
            message: u16_at(data, 0),
            code: u16_at(data, 2),
            notes: text(&data[4..68]),
        }
    }
}

/// A NUL-padded ASCII field.
fn text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_encode_as_the_protocol_document_lays_them_out() {
        // MOT_MOVE_HOME, channel 1, to the USB unit from the host.
        assert_eq!(
            Frame::request(id::MOT_MOVE_HOME).encode(),
            [0x43, 0x04, 0x01, 0x00, 0x50, 0x01]
        );
        // MOT_MOVE_ABSOLUTE to 2048 counts: 6 bytes of data follow.
        assert_eq!(
            move_absolute(2048).encode(),
            [
                0x53, 0x04, 0x06, 0x00, 0xD0, 0x01, 0x01, 0x00, 0x00, 0x08, 0x00, 0x00
            ]
        );
    }

    #[test]
    fn headers_from_the_controller_are_checked_before_any_data_is_read() {
        assert_eq!(
            parse_header([0x91, 0x04, 0x0E, 0x00, 0x81, 0x50]),
            Ok(Header::Long {
                id: id::MOT_GET_DCSTATUSUPDATE,
                len: 14
            })
        );
        assert_eq!(
            parse_header([0x44, 0x04, 0x01, 0x00, 0x01, 0x50]),
            Ok(Header::Short {
                id: id::MOT_MOVE_HOMED,
                param1: 1,
                param2: 0
            })
        );
        for (header, says) in [
            (
                [0x99, 0x09, 0x00, 0x00, 0x01, 0x50],
                "not a message a KDC101 sends",
            ),
            (
                [0x91, 0x04, 0xFF, 0x7F, 0x81, 0x50],
                "should carry 14 bytes",
            ),
            (
                [0x91, 0x04, 0x0E, 0x00, 0x01, 0x50],
                "should carry 14 bytes",
            ),
            ([0x44, 0x04, 0x06, 0x00, 0x81, 0x50], "carries no data"),
            ([0x91, 0x04, 0x0E, 0x00, 0x81, 0x11], "not an APT message"),
            ([0xFF, 0x00, 0x81, 0x7E, 0x02, 0x50], "not an APT message"),
        ] {
            let err = parse_header(header).expect_err(says);
            assert!(err.0.contains(says), "{header:x?}: {err}");
        }
    }

    #[test]
    fn payloads_decode() {
        let mut info = 27_000_101u32.to_le_bytes().to_vec();
        info.extend_from_slice(b"KDC101\0\0");
        info.extend_from_slice(&16u16.to_le_bytes());
        info.extend_from_slice(&[7, 0, 3, 0]);
        info.extend_from_slice(&[0; 60]);
        info.extend_from_slice(&[1, 0, 0, 0, 1, 0]);
        let info = HwInfo::decode(&info);
        assert_eq!(info.serial_number, 27_000_101);
        assert_eq!(info.model, "KDC101");
        assert_eq!(info.firmware_version(), "3.0.7");
        assert_eq!(info.channels, 1);

        let mut rich = id::MOT_SET_VELPARAMS.to_le_bytes().to_vec();
        rich.extend_from_slice(&39u16.to_le_bytes());
        let mut notes = [0u8; 64];
        notes[..8].copy_from_slice(b"too fast");
        rich.extend_from_slice(&notes);
        assert_eq!(
            RichResponse::decode(&rich),
            RichResponse {
                message: id::MOT_SET_VELPARAMS,
                code: 39,
                notes: "too fast".into()
            }
        );

        let jog = JogParams {
            mode: JOG_SINGLE_STEP,
            step: 3455,
            min_velocity: 0,
            acceleration: 396,
            max_velocity: 1_545_963,
            stop_mode: STOP_PROFILED,
        };
        assert_eq!(JogParams::decode(jog.set().data()), jog);
    }
}
