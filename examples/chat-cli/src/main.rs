//! `chat-cli --user alice --admin-secret S [--server http://127.0.0.1:7780]`

use tokio::io::BufReader;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match chat_cli::Options::from_args(std::env::args().skip(1)) {
        Ok(o) => o,
        // Help and version to stdout (exit 0), errors to stderr (exit 2).
        Err(e) => e.exit(),
    };
    match chat_cli::run(
        options,
        BufReader::new(tokio::io::stdin()),
        tokio::io::stdout(),
    )
    .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-cli: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
