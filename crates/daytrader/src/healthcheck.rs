//! `daytrader healthcheck`: GET /readyz on this machine, for container
//! health checks in images without curl.

use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::HealthcheckArgs;

pub async fn run(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let check = async {
        let mut stream = TcpStream::connect(("127.0.0.1", args.port)).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.1 200"))
    };
    match tokio::time::timeout(Duration::from_secs(args.timeout_secs), check).await {
        Ok(Ok(true)) => Ok(ExitCode::SUCCESS),
        Ok(Ok(false)) => {
            eprintln!("not ready");
            Ok(ExitCode::FAILURE)
        }
        Ok(Err(error)) => {
            eprintln!("no answer on port {}: {error}", args.port);
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            eprintln!("no answer within {} s", args.timeout_secs);
            Ok(ExitCode::FAILURE)
        }
    }
}
