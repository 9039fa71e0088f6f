//! `sekisho reach`: reachability analysis that runs the firewall instead of approximating it.
//!
//! A [`Model`] describes a VPC (subnets, route tables, firewall endpoints bound to sekisho
//! policies, NAT and internet gateways, hosts); [`Analyzer`] answers a [`Question`]
//! ("can `app` reach `dev.example.com:443` speaking TLS?") by
//!
//! 1. walking the forward path hop by hop (longest-prefix routes, the VPC's implicit `local`
//!    route, NAT, internet gateways and their ingress route table) and the return path from
//!    where it was delivered ([`path`]);
//! 2. synthesising the conversation the question names ([`synth`]: TCP handshake, then a TLS
//!    ClientHello, an HTTP request, an SMTP session or a DNS query, both directions);
//! 3. running it through a fresh [`sekisho_sensor::Sensor`] per firewall on the paths, with
//!    that firewall's compiled policy shared across questions (`Arc<RuleSet>`): the same
//!    pipeline `sekisho replay` and `sekisho run` use, so app-layer rules, domain lists, strict
//!    order, default actions and rate limits decide as they do on live traffic;
//! 4. answering `reachable`, `blocked`, `no-route` or `asymmetric` with the deciding rule or
//!    default action and the packet at which it decided ([`Analysis`], JSON with the AWS
//!    analysis field names).
//!
//! [`aws`] builds a model from AWS CLI JSON.

#![warn(missing_docs)]

pub mod analysis;
pub mod aws;
pub mod firewall;
pub mod model;
pub mod path;
pub mod synth;

pub use analysis::{Analysis, Analyzer, Dest, FirewallVerdict, Question, Status};
pub use model::Model;
pub use synth::{Proto, Talk};
