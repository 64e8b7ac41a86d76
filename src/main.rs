fn main() {
    std::process::exit(scrapemeter::app::cli::main());
}
