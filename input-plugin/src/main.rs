//! `op-events`: see `op_events_input::cli`.

fn main() {
    std::process::exit(op_events_input::cli::main());
}
