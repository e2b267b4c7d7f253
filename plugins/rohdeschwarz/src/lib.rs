//! Driver for the Rohde & Schwarz RTO oscilloscopes, over SCPI on the network (socket or VXI-11).

use pyrolab_plugin_api::prelude::*;

/// The service's `parameters:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {}

pub struct Driver {
    _parameters: Parameters,
}

#[service(name = "RTO")]
impl Driver {
    #[constructor]
    pub fn new(parameters: Parameters) -> Self {
        Driver {
            _parameters: parameters,
        }
    }
}

export_plugin!(Driver);
