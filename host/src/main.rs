#![forbid(unsafe_code)]

use std::process::ExitCode;

// mimalloc keeps freed large blocks for reuse; the system allocator maps and
// unmaps every megabyte-sized message buffer afresh, which made a 1 MB call
// several times slower (measured in benches/daemon_rpc.rs, docs/protocol.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    pyrolab_host::cli::main()
}
