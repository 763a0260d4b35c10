//! `chat-cli --user alice --admin-secret S [--server http://127.0.0.1:7780]`

use tokio::io::BufReader;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match chat_cli::Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "chat-cli: {e}\nusage: chat-cli --user NAME --admin-secret SECRET [--server http://127.0.0.1:7780] [--app demo] [--device cli] [--fingerprint HEX] [--ws]"
            );
            return std::process::ExitCode::from(2);
        }
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
