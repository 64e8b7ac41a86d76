fn main() {
    std::process::exit(scrapemeter::cli::main());
}
