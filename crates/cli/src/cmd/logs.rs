//! `sekisho logs`: queries over sekisho's own logs. `logs top` is the count-by report AWS
//! users run in CloudWatch Logs Insights (`stats count(event.tls.sni) as access_count by
//! event.tls.sni | sort access_count desc | limit 10`), streaming over EVE or NFW-envelope
//! files or stdin (`sekisho_eve::top`).

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use sekisho_eve::top::{Cond, Top, ALIASES};

/// Arguments of `sekisho logs`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LogsCommand,
}

#[derive(clap::Subcommand)]
enum LogsCommand {
    /// Count the values of one field and print the most frequent, with their counts.
    #[command(
        after_help = "Fields: any dotted path of an EVE record (tls.sni, http.hostname, \
dns.queries.rrname, alert.signature, dest_ip...); in NFW logs the same path is looked up inside \
`event`, and the CloudWatch form event.tls.sni works on EVE logs too. Short names: sni = tls.sni, \
host = http.hostname, dns.rrname = dns.query = dns.queries.rrname (requests only).

A protocol's field is counted in that protocol's own records when the logs have any (one tls \
record per TLS session; the alerts that carry the same tls object are not counted again), \
otherwise in every record that carries it (NFW alert logs). --where event_type=... picks the \
records yourself.

Exit status: 0 report printed, 2 bad arguments or an unreadable file. Lines that are not JSON \
are skipped with a warning naming the first one.

Examples:
  sekisho logs top out/eve.json                      # top 10 SNIs
  sekisho logs top event.tls.sni out/alert.log       # NFW alert log, as in CloudWatch
  sekisho logs top http.hostname --limit 20 out/eve.json
  sekisho logs top dns.rrname --where dns.rcode=NXDOMAIN out/eve.json
  sekisho logs top tls.sni --where alert.action=blocked --format json out/eve.json
  zcat old/eve.json.gz | sekisho logs top sni -"
    )]
    Top(TopArgs),
}

#[derive(clap::Args)]
struct TopArgs {
    /// The field to count by (default tls.sni; when the first argument is an existing file,
    /// it is read as a log and the field is tls.sni).
    #[arg(default_value = "tls.sni")]
    field: String,
    /// Log files (EVE eve.json, NFW alert.log / flow.log / tls.log); none or `-`: stdin.
    #[arg(value_name = "LOG")]
    logs: Vec<PathBuf>,
    /// Count only records where FIELD=VALUE (or FIELD!=VALUE); repeat to require several.
    #[arg(long = "where", value_name = "EXPR")]
    conds: Vec<String>,
    /// How many values to print.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Output: a table (the default), json or csv.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

/// Runs `sekisho logs`.
pub fn run(args: Args) -> ExitCode {
    match args.command {
        LogsCommand::Top(a) => top(a),
    }
}

fn top(mut a: TopArgs) -> ExitCode {
    // `sekisho logs top eve.json`: the default field with a log.
    let is_alias = ALIASES.iter().any(|(n, _, _)| *n == a.field);
    if !is_alias && (a.field == "-" || std::path::Path::new(&a.field).is_file()) {
        a.logs.insert(0, PathBuf::from(&a.field));
        a.field = "tls.sni".into();
    }
    let mut conds = Vec::new();
    for c in &a.conds {
        match Cond::parse(c) {
            Ok(c) => conds.push(c),
            Err(e) => {
                eprintln!("sekisho logs top: error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if a.field.trim().is_empty() || a.field.contains(char::is_whitespace) {
        let names: Vec<&str> = ALIASES.iter().map(|(n, _, _)| *n).collect();
        eprintln!(
            "sekisho logs top: error: '{}' is not a field: give a dotted path such as tls.sni (short names: {})",
            a.field,
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    let mut t = Top::new(&a.field, conds);
    let inputs: Vec<PathBuf> = if a.logs.is_empty() {
        if std::io::stdin().is_terminal() {
            eprintln!("sekisho logs top: reading records from stdin (give LOG files to read them instead)");
        }
        vec![PathBuf::from("-")]
    } else {
        a.logs.clone()
    };
    for path in &inputs {
        let name = path.display().to_string();
        let reader: Box<dyn BufRead> = if name == "-" {
            Box::new(BufReader::new(std::io::stdin().lock()))
        } else {
            match std::fs::File::open(path) {
                Ok(f) => Box::new(BufReader::new(f)),
                Err(e) => {
                    eprintln!("sekisho logs top: error: {name}: {e}");
                    return ExitCode::from(2);
                }
            }
        };
        let mut bad = 0u64;
        let mut first_bad = 0u64;
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("sekisho logs top: error: {name}: {e}");
                    return ExitCode::from(2);
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<serde_json::Value>(&line) {
                Ok(v) if v.is_object() => t.add(&v),
                _ => {
                    if bad == 0 {
                        first_bad = i as u64 + 1;
                    }
                    bad += 1;
                }
            }
        }
        if bad > 0 {
            eprintln!(
                "sekisho logs top: warning: {name}:{first_bad}: skipped {bad} line(s) that are not JSON records (gzip? pipe through zcat)"
            );
        }
    }
    let report = t.report(a.limit);
    let text = match a.format {
        Format::Table => report.table(),
        Format::Csv => report.csv(),
        Format::Json => match serde_json::to_string(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("sekisho logs top: error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    ExitCode::SUCCESS
}
