//! The OIF-ITLA-MSA register protocol: 4-byte frames with a BIP-4
//! checksum, the reply status, the NOP register's error codes, and the
//! registers this driver uses (the MSA's, and Pure Photonics' mode
//! register).
//!
//! A request is `[checksum:4 | LstRsp:1 | 0 | 0 | write:1]`, the register,
//! 16 bits of data (big-endian); a reply is `[checksum:4 | CE:1 | 0 |
//! status:2]`, the register echoed, 16 bits of data.

/// Register numbers.
pub mod register {
    pub const NOP: u8 = 0x00;
    pub const DEV_TYP: u8 = 0x01;
    pub const MFGR: u8 = 0x02;
    pub const MODEL: u8 = 0x03;
    pub const SER_NO: u8 = 0x04;
    pub const MFG_DATE: u8 = 0x05;
    pub const RELEASE: u8 = 0x06;
    pub const AEA_EAR: u8 = 0x0B;
    pub const CHANNEL: u8 = 0x30;
    pub const PWR: u8 = 0x31;
    pub const RES_ENA: u8 = 0x32;
    pub const FCF1: u8 = 0x35;
    pub const FCF2: u8 = 0x36;
    pub const LF1: u8 = 0x40;
    pub const LF2: u8 = 0x41;
    pub const OOP: u8 = 0x42;
    pub const OPSL: u8 = 0x50;
    pub const OPSH: u8 = 0x51;
    pub const LFL1: u8 = 0x52;
    pub const LFL2: u8 = 0x53;
    pub const LFH1: u8 = 0x54;
    pub const LFH2: u8 = 0x55;
    pub const FCF3: u8 = 0x67;
    pub const LF3: u8 = 0x68;
    /// Pure Photonics' mode: 0 standard (dither), 1 no dither, 2 whisper.
    pub const MODE: u8 = 0x90;
}

/// A register's name, for messages.
pub fn register_name(register: u8) -> String {
    use register::*;
    let name = match register {
        NOP => "NOP",
        DEV_TYP => "DevTyp",
        MFGR => "MFGR",
        MODEL => "Model",
        SER_NO => "SerNo",
        MFG_DATE => "MFGDate",
        RELEASE => "Release",
        AEA_EAR => "AEA-EAR",
        CHANNEL => "Channel",
        PWR => "PWR",
        RES_ENA => "ResEna",
        FCF1 => "FCF1",
        FCF2 => "FCF2",
        FCF3 => "FCF3",
        LF1 => "LF1",
        LF2 => "LF2",
        LF3 => "LF3",
        OOP => "OOP",
        OPSL => "OPSL",
        OPSH => "OPSH",
        LFL1 => "LFL1",
        LFL2 => "LFL2",
        LFH1 => "LFH1",
        LFH2 => "LFH2",
        MODE => "Mode",
        _ => return format!("register 0x{register:02X}"),
    };
    format!("{name} (0x{register:02X})")
}

/// ResEna's software enable bit: the optical output.
pub const SENA: u16 = 0x0008;
/// NOP: the pending-operation flags.
pub const PENDING_FLAGS: u16 = 0xFF00;
/// NOP: the error field.
pub const ERROR_FIELD: u16 = 0x000F;
/// Request flag: "send your last reply again".
const LST_RSP: u8 = 0x08;
/// Reply flag: "your last request failed its checksum".
const CE: u8 = 0x08;

/// The BIP-4 checksum of a frame (its checksum nibble not counted).
pub fn checksum(frame: [u8; 4]) -> u8 {
    let bip8 = (frame[0] & 0x0F) ^ frame[1] ^ frame[2] ^ frame[3];
    (bip8 >> 4) ^ (bip8 & 0x0F)
}

fn with_checksum(mut frame: [u8; 4]) -> [u8; 4] {
    frame[0] = (frame[0] & 0x0F) | (checksum(frame) << 4);
    frame
}

/// A request: read `register` (`data` 0) or write `data` to it.
pub fn request(write: bool, register: u8, data: u16) -> [u8; 4] {
    let [high, low] = data.to_be_bytes();
    with_checksum([u8::from(write), register, high, low])
}

/// The request asking the laser to repeat its last reply.
pub fn last_response_request() -> [u8; 4] {
    with_checksum([LST_RSP, 0, 0, 0])
}

/// A reply's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ok,
    /// Execution error: the reason is in NOP's error field.
    ExecutionError,
    /// A string follows: the data is its length; read it from AEA-EAR.
    AutomaticExtendedAddressing,
    /// Command pending: poll NOP until its pending flags clear.
    CommandPending,
}

/// A reply, its checksum good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The laser saw a corrupted request (CE) and did not execute it.
    pub communication_error: bool,
    pub status: Status,
    pub register: u8,
    pub data: u16,
}

/// Why a reply is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadChecksum;

/// Reads a reply frame.
pub fn decode(frame: [u8; 4]) -> Result<Reply, BadChecksum> {
    if checksum(frame) != frame[0] >> 4 {
        return Err(BadChecksum);
    }
    let status = match frame[0] & 0x03 {
        0 => Status::Ok,
        1 => Status::ExecutionError,
        2 => Status::AutomaticExtendedAddressing,
        _ => Status::CommandPending,
    };
    Ok(Reply {
        communication_error: frame[0] & CE != 0,
        status,
        register: frame[1],
        data: u16::from_be_bytes([frame[2], frame[3]]),
    })
}

/// An error code of NOP's error field: its MSA abbreviation and meaning.
pub fn error_meaning(code: u8) -> (&'static str, &'static str) {
    match code {
        0x00 => ("OK", "no error"),
        0x01 => ("RNI", "register not implemented"),
        0x02 => ("RNW", "register not writable"),
        0x03 => ("RVE", "register value range error"),
        0x04 => ("CIP", "command ignored while an operation is pending"),
        0x05 => (
            "CII",
            "command ignored while the module initializes or is misconfigured",
        ),
        0x06 => ("ERE", "extended address range error"),
        0x07 => ("ERO", "extended address is read-only"),
        0x08 => ("EXF", "execution general failure"),
        0x09 => ("CIE", "command ignored while the optical output is enabled"),
        0x0A => ("IVC", "invalid configuration, command ignored"),
        0x0F => ("VSE", "vendor-specific error"),
        _ => ("reserved", "an error code the MSA reserves"),
    }
}

/// `"RVE (register value range error)"`, for error code `code`.
pub fn describe_error(code: u8) -> String {
    let (name, meaning) = error_meaning(code);
    format!("{name} ({meaning})")
}

/// The error code for RNI, which the driver tolerates on the optional
/// MHz registers (FCF3, LF3).
pub const RNI: u8 = 0x01;

/// The speed of light, in m/s: GHz = C / nm.
pub const C_SPEED: f64 = 299_792_458.0;

/// A frequency in MHz as FCF1/FCF2/FCF3 (THz, 0.1 GHz, MHz).
pub fn split_mhz(mhz: u64) -> [u16; 3] {
    [
        (mhz / 1_000_000) as u16,
        (mhz % 1_000_000 / 100) as u16,
        (mhz % 100) as u16,
    ]
}

/// FCF1/FCF2/FCF3 (or LF1/LF2/LF3) as MHz.
pub fn join_mhz([thz, ghz10, mhz]: [u16; 3]) -> u64 {
    u64::from(thz) * 1_000_000 + u64::from(ghz10) * 100 + u64::from(mhz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_bip4_checksum() {
        // An idle Pure Photonics laser's reply to a NOP read.
        assert_eq!(request(false, register::NOP, 0), [0, 0, 0, 0]);
        assert_eq!(
            decode([0x10, 0x00, 0x00, 0x10]),
            Ok(Reply {
                communication_error: false,
                status: Status::Ok,
                register: 0,
                data: 0x0010
            })
        );
        // ResEna = SENA (PyroLab's on()).
        assert_eq!(
            request(true, register::RES_ENA, SENA),
            [0x81, 0x32, 0x00, 0x08]
        );
        assert_eq!(decode([0x20, 0x00, 0x00, 0x10]), Err(BadChecksum));
        // A request decodes as a reply with the same fields (flags aside).
        let echoed = decode(request(false, register::PWR, 1000)).unwrap();
        assert_eq!((echoed.register, echoed.data), (register::PWR, 1000));
        assert!(decode(last_response_request()).is_ok());
    }

    #[test]
    fn frequencies_split_into_thz_tenths_of_ghz_and_mhz() {
        assert_eq!(split_mhz(193_414_489), [193, 4144, 89]);
        assert_eq!(join_mhz([193, 4144, 89]), 193_414_489);
        assert_eq!(describe_error(3), "RVE (register value range error)");
    }
}
