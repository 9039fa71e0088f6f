//! What detection reports: alerts and drops. The record types live with the engine's other
//! records ([`sekisho_engine::records`]) so the log writers need not depend on detection.

pub use sekisho_engine::records::{AlertInfo, AlertRecord, DropRecord, Output, PacketHead};
