use std::process::ExitCode;

fn main() -> ExitCode {
    pyrolab_host::cli::main()
}
