use clap::Parser;

fn main() {
    let cli = cargo_docker_release::cli::Cli::parse();
    let shell = cargo_docker_release::shell_for(&cli);
    if let Err(error) = cargo_docker_release::run(cli, &shell) {
        if error.is_broken_pipe() {
            return;
        }
        shell.error(&error);
        std::process::exit(error.exit_code());
    }
}
