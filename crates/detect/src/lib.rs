//! Detection: compiles Suricata rules into matchers, evaluates them on every packet after
//! the app layer saw it, and decides verdicts with Suricata's and AWS Network Firewall's
//! semantics (action order, strict order, pass/drop scopes, NFW default actions).
//!
//! - [`RuleSet::from_policy`] compiles a policy; rules the engine cannot evaluate are listed
//!   by [`RuleSet::not_loaded`] with the keyword responsible (never silently ignored).
//! - [`Detector`] is the engine [`sekisho_engine::Inspector`]: give it to
//!   `Engine::with_inspector`, then drain [`Detector::poll_output`] for alert and drop
//!   records and [`Detector::take_explain`] for `--explain` lines.

#![warn(missing_docs)]

mod detector;
pub mod firewall;
pub mod output;
pub mod payload;
pub mod prefilter;
mod ruleset;
pub mod sig;
pub mod threshold;
mod txscan;

pub use detector::{DetectConfig, DetectStats, Detector, DEFAULT_STREAM_DEPTH, FLOW_STATE_BYTES};
pub use output::{AlertInfo, AlertRecord, DropRecord, Output, PacketHead};
pub use ruleset::{
    parse_classification, CompileOptions, DefaultRule, EstablishedScope, LoadStats, RuleSet,
};
pub use sig::NotLoaded;
