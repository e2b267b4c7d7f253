//! What `--version` says: this build, and the plugin ABI a driver must
//! match to load in it. `plugins list` shows the same words, so there is
//! one place that says which drivers this host loads.

use std::sync::OnceLock;

use crate::loader::{host_plugin_api_version, loadable_plugin_api_series};

/// `plugin-api 0.1.4, ABI 0.1.x`: the plugin-api version this host was
/// built with, and the series a driver must have been built against.
pub(super) fn plugin_abi() -> String {
    format!(
        "plugin-api {}, ABI {}",
        host_plugin_api_version(),
        loadable_plugin_api_series()
    )
}

/// `-V` (after the program's name): `0.1.4 (plugin-api 0.1.4, ABI 0.1.x)`.
pub(super) fn short() -> &'static str {
    static SHORT: OnceLock<String> = OnceLock::new();
    // clap wants a `&'static str`, and the versions come from functions.
    SHORT.get_or_init(|| format!("{} ({})", env!("CARGO_PKG_VERSION"), plugin_abi()))
}

/// `--version`: the short form, then what each compatibility number
/// means, for a bug report or for checking a driver built elsewhere.
pub(super) fn long() -> &'static str {
    static LONG: OnceLock<String> = OnceLock::new();
    LONG.get_or_init(|| {
        let abi_stable = abi_stable::library::AbiHeader::VALUE;
        format!(
            "{}\n\
             plugin ABI: loads drivers built against pyrolab-plugin-api {} (docs/plugin-abi.md)\n\
             abi_stable: layout ABI {}.{}\n\
             manager control protocol: {}",
            short(),
            loadable_plugin_api_series(),
            abi_stable.abi_major,
            abi_stable.abi_minor,
            crate::manager::protocol::PROTOCOL_VERSION,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_names_the_plugin_api_it_was_built_with() {
        let version = pyrolab_plugin_api::PLUGIN_API_VERSION;
        assert!(
            short().contains(&format!("plugin-api {version}")),
            "{}",
            short()
        );
        assert!(short().starts_with(env!("CARGO_PKG_VERSION")));
        assert!(long().starts_with(short()));
        assert!(long().contains("abi_stable: layout ABI 0."), "{}", long());
    }
}
