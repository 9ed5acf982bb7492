fn main() {
    lab::keep_freed_memory();
    std::process::exit(lab::cli::main());
}
