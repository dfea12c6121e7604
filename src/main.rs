use clap::Parser;

fn main() {
    let cli = cargo_docker_release::cli::Cli::parse();
    let shell = cli.shell();
    if let Err(error) = cli.run(&shell) {
        if error.is_broken_pipe() {
            return;
        }
        shell.error(&error);
        std::process::exit(error.exit_code());
    }
}
