//! The sensor: the whole packet pipeline behind one sans-I/O API.
//!
//! A [`Sensor`] is the engine (decode, flows, reassembly, app layer) with detection plugged
//! in, built from one typed [`Settings`] (the policy's keys and every `--set`, parsed once)
//! and an optional compiled [`RuleSet`] shared by every worker (`Arc`). Drivers move bytes
//! and time; the sensor never reads a clock, a file or a socket:
//!
//! - [`Sensor::handle_packet`]`(ts, link, frame) -> Verdict`: one captured frame;
//! - [`Sensor::handle_timeout`]`(now)`: time passed without packets (live capture);
//! - [`Sensor::finish`]`(now)`: end of input (every flow ends; the stats record follows);
//! - [`Sensor::poll_record`]: alerts, drops, flows, transactions, anomalies, `--explain`
//!   lines and stats, in the order they happened;
//! - [`Sensor::poll_transmit`]: packets the sensor wants sent (a reject's TCP RST or ICMP
//!   port unreachable);
//! - [`Sensor::swap_rules`]: a reload; flows and their app-layer state carry on.
//!
//! ```
//! use sekisho_sensor::{Mode, Record, Sensor, Settings};
//! use sekisho_engine::{Event, LinkType, Timestamp};
//! let mut sensor = Sensor::new(&Settings::new(Mode::Inline), None);
//! // A frame too short for Ethernet: dropped inline (it cannot be inspected) and reported
//! // as a decoder anomaly.
//! let v = sensor.handle_packet(Timestamp::from_secs_micros(1, 0), LinkType::Ethernet, &[0u8; 10]);
//! assert!(v.is_drop());
//! assert!(matches!(sensor.poll_record(), Some(Record::Event(Event::Decoder(_)))));
//! sensor.finish(Timestamp::from_secs_micros(2, 0));
//! match sensor.poll_record() {
//!     Some(Record::Stats { counters, .. }) => {
//!         assert!(counters.contains(&("decoder.invalid", 1)));
//!     }
//!     other => panic!("expected the closing stats record, got {other:?}"),
//! }
//! assert!(sensor.poll_record().is_none());
//! ```

#![warn(missing_docs)]

mod ratelimit;
pub use ratelimit::{RateLimitTables, TableSummary};
mod sensor;
mod settings;
mod verdicts;

pub use sekisho_detect::RuleSet;
pub use sekisho_engine::records::Record;
pub use sekisho_engine::Transmit;
pub use sensor::{FlowDecision, Sensor};
pub use settings::{Mode, SettingError, Settings, SETTING_KEYS};
pub use verdicts::verdict_counter_names;
