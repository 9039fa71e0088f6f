//! sans-I/O packet engine: decoding, flows, TCP reassembly, app layer, detection, verdicts.
//!
//! The engine takes `(timestamp, link type, frame bytes)` through [`Engine::handle_packet`],
//! tracks flows, reassembles TCP, detects the application protocol and runs its parser
//! ([`app`]: the protocol registry), hands in-order payload to an [`Inspector`] and queues [`Event`]s
//! (flow ends, finished app-layer transactions, decoder, stream and app-layer anomalies) for
//! [`Engine::poll_event`]. Time is always an argument; nothing here reads a clock, a file or
//! a socket.
//!
//! Payload is not queued as owned events: the inspector sees in-order stream bytes as slices
//! borrowed from the packet (in-order fast path of reassembly) or from the reassembly buffer,
//! during `handle_packet`, so no payload is copied for delivery. Events in the queue are small
//! (flow records, anomalies).
//!
//! Verdicts: the inspector's [`Inspector::on_packet`] runs before the packet's payload goes to
//! the TCP state machine, reassembly, the app layer and [`Inspector::on_stream_data`] (the app
//! layer is fed each in-order chunk just before the inspector sees it);
//! [`Inspector::on_packet_end`] runs after all of that, with the app-layer state updated
//! ([`PacketContext::app`]). The packet's verdict combines all of them ([`Verdict::and`]).
//! With [`EngineConfig::inline`] a packet dropped by `on_packet` never reaches the stream or
//! app layer (the sender's retransmission can fill the hole later) and [`Verdict::DropFlow`]
//! (from either call) drops the rest of the flow uninspected; in monitor mode verdicts are
//! only reported.
//!
//! Per packet the hot path does one hash lookup (foldhash, random seed) in the flow table and
//! allocates nothing; allocation happens per flow (TCP session, record at the end) and for
//! fragments and out-of-order TCP data (bounded, see [`config`]).
//!
//! ```
//! use sekisho_engine::{Engine, EngineConfig, Event, LinkType, Timestamp};
//! let mut engine = Engine::new(EngineConfig::default());
//! engine.handle_packet(Timestamp::from_secs_micros(1, 0), LinkType::Ethernet, &[0u8; 10]);
//! engine.finish(Timestamp::from_secs_micros(2, 0));
//! while let Some(ev) = engine.poll_event() {
//!     if let Event::Decoder(d) = ev {
//!         assert_eq!(d.event.name(), "ethernet.pkt_too_small");
//!     }
//! }
//! assert_eq!(engine.stats().decoder.invalid, 1);
//! ```

#![warn(missing_docs)]

pub mod app;
pub mod config;
pub mod decode;
pub mod droplog;
pub mod emit;
mod engine;
pub mod event;
pub mod exception;
pub mod flow;
pub mod link;
pub mod reassembly;
pub mod records;
pub mod stats;
pub mod time;

pub use app::{AppLayer, AppProto};
pub use config::{
    AppLayerConfig, ChecksumMode, DefragConfig, EngineConfig, FlowTimeouts, ProtoTimeouts,
    ProtocolMode, ProtocolSwitches,
};
pub use decode::DecodeEvent;
pub use engine::{Engine, MemUse};
pub use event::{
    AppAnomalyRecord, AppChunk, AppTxData, AppTxRecord, DecoderEventRecord, Direction, Event,
    Inspector, PacketContext, PacketTuple, RejectTo, StreamEventRecord, Transmit, Verdict,
};
pub use exception::{ExceptionAction, ExceptionPolicies, ExceptionTarget};
pub use flow::{DirStats, FlowAction, FlowEndReason, FlowRecord, FlowState, TcpState};
pub use link::LinkType;
pub use stats::Stats;
pub use time::Timestamp;
