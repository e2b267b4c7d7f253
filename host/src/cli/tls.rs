//! `pyrolab-host tls init | issue | show`: the lab's certificate authority
//! in the data directory.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::Context;
use super::table;
use crate::tls::authority::{self, Authority, Request, Summary, Usage};

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Create the lab's certificate authority in the data directory
    /// (tls/ca.crt, and tls/ca.key readable by you only). Its certificate
    /// is what every client and server trusts: Python clients name it in
    /// PYRO_SSL_CACERTS.
    Init {
        /// The lab's name, in the CA's subject (`NAME lab CA` and a random
        /// mark).
        #[arg(long, default_value = "pyrolab")]
        name: String,
        /// Days the CA is valid.
        #[arg(long, default_value_t = authority::CA_DAYS)]
        days: u32,
    },

    /// Issue a certificate signed by the lab CA: tls/NAME.crt and
    /// tls/NAME.key. NAME is the holder's identity (the subject's common
    /// name), as access rules name it; a component's certificate is found
    /// by the component's name unless its `tls.identity` says otherwise.
    Issue(IssueArgs),

    /// List the lab CA's certificates with their identities, hosts and
    /// expiry.
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The holder's name: a person (`alice`), a program, or a component
    /// (`lab-daemon`). Letters, digits, `.`, `-`, `_`.
    name: String,
    /// For a server only (daemons, name servers, the monitor).
    #[arg(long, conflicts_with = "client")]
    server: bool,
    /// For a client only (a person's or a script's identity).
    #[arg(long)]
    client: bool,
    /// A host name or address a server is reached by (as URIs write it);
    /// repeatable. Default: localhost, 127.0.0.1 and ::1.
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Days it is valid.
    #[arg(long, default_value_t = authority::DEFAULT_DAYS)]
    days: u32,
    /// Replace a certificate of the same name.
    #[arg(long)]
    force: bool,
}

pub fn run(command: TlsCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let Some(data_dir) = &context.data_dir else {
        bail!("no data directory: give --data-dir DIR or set PYROLAB_HOME");
    };
    let authority = Authority::of(data_dir);
    match command {
        TlsCommand::Init { name, days } => {
            let ca = authority.init(&name, days)?;
            println!(
                "created the lab CA {:?}, valid until {}",
                ca.subject,
                date(ca.not_after)
            );
            println!("  certificate  {}", ca.cert.display());
            if let Some(key) = &ca.key {
                println!("  private key  {} (yours only: keep it so)", key.display());
            }
            println!();
            println!("next: `pyrolab-host tls issue NAME` for each daemon, name server and user");
        }
        TlsCommand::Issue(args) => {
            if args.client && !args.hosts.is_empty() {
                bail!("--host is for server certificates; a --client certificate names no host");
            }
            let usage = match (args.server, args.client) {
                (true, _) => Usage::Server,
                (_, true) => Usage::Client,
                _ => Usage::Both,
            };
            let mut request = Request::new(&args.name, usage, args.hosts, args.days);
            request.force = args.force;
            let issued = authority
                .issue(&request)
                .with_context(|| format!("cannot issue {:?}", args.name))?;
            print_issued(&issued, &authority);
        }
        TlsCommand::Show { json } => {
            let all = authority.list()?;
            if json {
                super::print_json(&all)?;
            } else {
                print!("{}", show_table(&all));
                println!();
                println!(
                    "CA certificate (PYRO_SSL_CACERTS): {}",
                    authority.ca_cert().display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_issued(issued: &Summary, authority: &Authority) {
    println!(
        "issued {:?} ({}), valid until {}",
        issued.subject,
        issued.usage,
        date(issued.not_after)
    );
    if !issued.hosts.is_empty() {
        println!("  hosts        {}", issued.hosts.join(", "));
    }
    println!("  certificate  {}", issued.cert.display());
    if let Some(key) = &issued.key {
        println!("  private key  {}", key.display());
    }
    if issued.usage != "server" {
        println!();
        println!("a Python client uses it with:");
        println!("  export PYRO_SSL=1");
        println!(
            "  export PYRO_SSL_CACERTS={}",
            authority.ca_cert().display()
        );
        println!("  export PYRO_SSL_CLIENTCERT={}", issued.cert.display());
        if let Some(key) = &issued.key {
            println!("  export PYRO_SSL_CLIENTKEY={}", key.display());
        }
    }
}

fn show_table(all: &[Summary]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|summary| {
            let state = match summary.not_after - now {
                left if left < 0 => "EXPIRED".to_owned(),
                left if left < 30 * 86_400 => format!("expires in {} days", left / 86_400),
                _ => "valid".to_owned(),
            };
            vec![
                summary.name.clone(),
                summary.subject.clone(),
                summary.usage.clone(),
                date(summary.not_after),
                state,
                summary.hosts.join(","),
            ]
        })
        .collect();
    table::render(
        "",
        &["NAME", "IDENTITY", "USAGE", "EXPIRES", "STATE", "HOSTS"],
        &rows,
    )
}

/// A Unix time as a UTC date and time.
fn date(seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        ),
        Err(_) => seconds.to_string(),
    }
}
