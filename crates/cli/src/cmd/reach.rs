//! `sekisho reach`: wiring between the command line and `sekisho_reach` (model, question,
//! sweeps, text or JSON output).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use sekisho_reach::{Analyzer, Dest, Model, Proto, Question, Talk};

const LONG_ABOUT: &str = "\
Answer \"can SRC reach DST?\" on a network model, running the firewall instead of approximating it.

The model (--model, YAML; docs/reach.md) describes a VPC: subnets with route tables (longest
prefix wins; the VPC's CIDR is routed `local` implicitly), firewall endpoints bound to sekisho
policy files, NAT gateways, internet gateways (addresses outside the VPC are the internet) and
hosts. --aws DIR builds the model from AWS CLI JSON instead (describe-subnets,
describe-route-tables, describe-nat-gateways, describe-internet-gateways, describe-instances,
network-firewall describe-firewall / describe-firewall-policy / describe-rule-group).

sekisho walks the forward path hop by hop and the return path back, synthesises the
conversation the question names (TCP handshake, then a TLS ClientHello with --sni, an HTTP
request with --host, an SMTP session with --mail-from/--rcpt, a DNS query for --qname; for tcp
and udp one data segment each way), and runs it, both directions, through each firewall's real
sensor and policy (the code `sekisho replay` and `sekisho run` use). The verdict at a firewall
is what the engine decides: app-layer rules, domain lists, strict order, default actions, rate
limits.

Status: reachable | blocked | no-route | asymmetric (the return path does not cross the same
stateful firewall; a failure, with both paths shown). Each hop names the route that carried
the packet; a firewall hop names the deciding rule (group, sid, msg, action) or default action
and the packet at which it decided, with the engine's --explain lines. --format json uses the
AWS analysis field names (NetworkPathFound, ForwardPathComponents, ReturnPathComponents,
Explanations with ExplanationCode) plus a top-level `status`.

Sweeps print one line per question: --ports 1-1024 (each port), --sni-list FILE (one server
name a line), --rcpt-list FILE (one recipient a line); each firewall's rules are compiled once.

DST is a host of the model, an IPv4 address, or a DNS name on the internet (then it stands at
203.0.113.80 and is the default --sni / --host). The port defaults to the protocol's (tls 443,
http 80, smtp 25, dns 53).

Exit status:
  0  reachable (a sweep: every answer printed, whatever the answers)
  1  not reachable: blocked, no-route or asymmetric
  2  usage error, or a model or policy that cannot be read or is invalid (diagnostics printed)

Examples:
  sekisho reach --model examples/reach/vpc.yaml --from app --to dev.example.com:443 --proto tls
  sekisho reach --model examples/reach/vpc.yaml --from app --to 203.0.113.10:80 --proto http --format json
  sekisho reach --model examples/reach/vpc-drop-established.yaml --from app --to 203.0.113.10:587
  sekisho reach --model examples/reach/vpc-smtp.yaml --from app --to 203.0.113.25 --proto smtp --rcpt b@yahoo.example
  sekisho reach --model examples/reach/vpc.yaml --from app --to 203.0.113.10 --ports 1-1024
  sekisho reach --aws examples/reach/aws --from app --to dev.example.com:443 --proto tls";

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// For people: the paths hop by hop, the deciding rule and packet.
    Text,
    /// AWS analysis field names plus `status`.
    Json,
}

/// Arguments of `sekisho reach`.
#[derive(clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    /// The network model (YAML, docs/reach.md).
    #[arg(
        long,
        value_name = "NET.yaml",
        required_unless_present = "aws",
        conflicts_with = "aws"
    )]
    pub model: Option<PathBuf>,
    /// Build the model from AWS CLI JSON files in DIR (docs/reach.md lists the commands).
    #[arg(long, value_name = "DIR")]
    pub aws: Option<PathBuf>,
    /// Source: a host of the model (name or address).
    #[arg(long, value_name = "SRC")]
    pub from: String,
    /// Destination: a host of the model, an IPv4 address or a DNS name, with an optional
    /// :PORT.
    #[arg(long, value_name = "DST[:PORT]")]
    pub to: String,
    /// The conversation to synthesise.
    #[arg(long, value_name = "PROTO", default_value = "tcp",
          value_parser = clap::builder::PossibleValuesParser::new(Proto::NAMES))]
    pub proto: String,
    /// TLS: the ClientHello's server name [default: DST when it is a name].
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// HTTP: the Host header [default: DST when it is a name, else example.com].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// SMTP: MAIL FROM.
    #[arg(long, value_name = "ADDR", default_value = "sender@example.net")]
    pub mail_from: String,
    /// SMTP: RCPT TO (repeatable, or several values) [default: postmaster@example.com].
    #[arg(long, value_name = "ADDR", num_args = 1..)]
    pub rcpt: Vec<String>,
    /// DNS: the name queried [default: DST when it is a name, else example.com].
    #[arg(long, value_name = "NAME")]
    pub qname: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: FormatArg,
    /// Sweep destination ports: a range A-B or a list (1-1024, 25,465,587).
    #[arg(long, value_name = "RANGE", conflicts_with_all = ["sni_list", "rcpt_list"])]
    pub ports: Option<String>,
    /// Sweep TLS server names: one per line (blank lines and # comments skipped).
    #[arg(long, value_name = "FILE", conflicts_with = "rcpt_list")]
    pub sni_list: Option<PathBuf>,
    /// Sweep SMTP recipients: one per line, each its own session.
    #[arg(long, value_name = "FILE")]
    pub rcpt_list: Option<PathBuf>,
}

/// Runs `sekisho reach`.
pub fn run(args: Args) -> ExitCode {
    // The AWS importer writes each firewall's policy as a sekisho policy file; they are
    // read once, when the analyser compiles them, and removed afterwards.
    let generated = std::env::temp_dir().join(format!("sekisho-reach-aws-{}", std::process::id()));
    let model = match (&args.model, &args.aws) {
        (Some(p), _) => Model::load(p),
        (None, Some(dir)) => sekisho_reach::aws::import(dir, &generated),
        (None, None) => unreachable_args(),
    };
    let model = match model {
        Ok(m) => m,
        Err(diags) => {
            for d in &diags {
                eprint!("{}", d.render());
            }
            eprintln!("sekisho reach: error: the model is invalid (see above)");
            return ExitCode::from(2);
        }
    };
    let analyzer = Analyzer::new(model);
    if args.aws.is_some() {
        let _ = std::fs::remove_dir_all(&generated);
    }
    let analyzer = match analyzer {
        Ok(a) => a,
        Err(diags) => {
            for d in &diags {
                eprint!("{}", d.render());
            }
            eprintln!("sekisho reach: error: a firewall's policy is invalid (see above)");
            return ExitCode::from(2);
        }
    };
    let question = match question(&args, &analyzer) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("sekisho reach: error: {e}");
            return ExitCode::from(2);
        }
    };
    let sweep = match sweep_items(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sekisho reach: error: {e}");
            return ExitCode::from(2);
        }
    };
    match sweep {
        None => match analyzer.analyze(&question) {
            Ok(a) => {
                match args.format {
                    FormatArg::Text => print!("{}", a.to_text()),
                    FormatArg::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&a.to_json()).unwrap_or_default()
                    ),
                }
                if a.reachable() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("sekisho reach: error: {e}");
                ExitCode::from(2)
            }
        },
        Some((kind, items)) => run_sweep(&args, &analyzer, &question, kind, &items),
    }
}

fn unreachable_args() -> Result<Model, Vec<sekisho_diag::Diagnostic>> {
    Err(vec![sekisho_diag::Diagnostic::error(
        "give --model NET.yaml or --aws DIR",
    )])
}

/// The question from the flags.
fn question(args: &Args, analyzer: &Analyzer) -> Result<Question, String> {
    let mut proto =
        Proto::parse(&args.proto).ok_or_else(|| format!("unknown --proto {}", args.proto))?;
    // A server-name sweep is a TLS question whatever --proto says.
    if args.sni_list.is_some() {
        proto = Proto::Tls;
    }
    let (dst, port) = match args.to.rsplit_once(':') {
        Some((d, p)) => (
            d.to_string(),
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("--to {}: '{p}' is not a port (0-65535)", args.to))?,
            ),
        ),
        None => (args.to.clone(), None),
    };
    let to = if analyzer.model.hosts.contains_key(&dst) {
        Dest::Host(dst.clone())
    } else if let Ok(a) = dst.parse::<Ipv4Addr>() {
        Dest::Addr(a)
    } else if dst.contains('.') {
        Dest::Name(dst.clone())
    } else {
        return Err(format!(
            "--to {dst}: not a host of the model, an IPv4 address or a DNS name (hosts: {})",
            analyzer
                .model
                .hosts
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let port = match port.or(proto.default_port()) {
        Some(p) => p,
        None if args.ports.is_some() => 0,
        None => {
            return Err(format!(
                "--to {}: give a port (DST:PORT) for --proto {proto}, or sweep with --ports",
                args.to
            ))
        }
    };
    let name = match &to {
        Dest::Name(n) => Some(n.clone()),
        _ => None,
    };
    let mut talk = Talk::new(proto);
    talk.sni = args.sni.clone().or(name.clone());
    talk.host = args.host.clone().or(name.clone());
    talk.mail_from = args.mail_from.clone();
    if !args.rcpt.is_empty() {
        talk.rcpt = args.rcpt.clone();
    }
    if let Some(q) = args.qname.clone().or(name) {
        talk.qname = q;
    }
    Ok(Question {
        from: args.from.clone(),
        to,
        port,
        talk,
    })
}

/// What a sweep varies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SweepKind {
    Port,
    Sni,
    Rcpt,
}

fn list_file(p: &PathBuf) -> Result<Vec<String>, String> {
    let text =
        std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

fn sweep_items(args: &Args) -> Result<Option<(SweepKind, Vec<String>)>, String> {
    if let Some(r) = &args.ports {
        let mut ports = Vec::new();
        for part in r.split(',') {
            let (a, b) = sekisho_reach::model::parse_ports(part).ok_or_else(|| {
                format!("--ports {r}: '{part}' is not a port or range A-B (e.g. 1-1024)")
            })?;
            ports.extend((a..=b).map(|p| p.to_string()));
        }
        return Ok(Some((SweepKind::Port, ports)));
    }
    if let Some(p) = &args.sni_list {
        return Ok(Some((SweepKind::Sni, list_file(p)?)));
    }
    if let Some(p) = &args.rcpt_list {
        return Ok(Some((SweepKind::Rcpt, list_file(p)?)));
    }
    Ok(None)
}

fn run_sweep(
    args: &Args,
    analyzer: &Analyzer,
    base: &Question,
    kind: SweepKind,
    items: &[String],
) -> ExitCode {
    let started = std::time::Instant::now();
    let mut rows = Vec::with_capacity(items.len());
    let mut q = base.clone();
    if kind == SweepKind::Rcpt && q.talk.proto != Proto::Smtp {
        eprintln!("sekisho reach: error: --rcpt-list needs --proto smtp");
        return ExitCode::from(2);
    }
    let mut reachable = 0usize;
    for item in items {
        match kind {
            SweepKind::Port => q.port = item.parse().unwrap_or(0),
            SweepKind::Sni => q.talk.sni = Some(item.clone()),
            SweepKind::Rcpt => q.talk.rcpt = vec![item.clone()],
        }
        match analyzer.analyze(&q) {
            Ok(a) => {
                reachable += usize::from(a.reachable());
                rows.push((item.clone(), a.status.as_str(), a.decided_by()));
            }
            Err(e) => {
                eprintln!("sekisho reach: error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let col = match kind {
        SweepKind::Port => "port",
        SweepKind::Sni => "sni",
        SweepKind::Rcpt => "rcpt",
    };
    match args.format {
        FormatArg::Text => {
            let w = rows
                .iter()
                .map(|r| r.0.len())
                .max()
                .unwrap_or(4)
                .max(col.len());
            println!("{:<w$}  {:<10}  decided by", col.to_uppercase(), "STATUS");
            for (item, status, by) in &rows {
                println!("{item:<w$}  {status:<10}  {by}");
            }
        }
        FormatArg::Json => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(item, status, by)| {
                    serde_json::json!({col: item, "status": status, "NetworkPathFound": *status == "reachable", "DecidedBy": by})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
    eprintln!(
        "sekisho reach: {} questions, {reachable} reachable, in {secs:.3} s ({:.0} questions/s)",
        rows.len(),
        rows.len() as f64 / secs.max(1e-9)
    );
    ExitCode::SUCCESS
}
