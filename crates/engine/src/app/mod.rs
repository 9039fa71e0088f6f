//! Application-layer parsers: sans-I/O state machines fed with in-order
//! reassembled stream bytes per direction.

pub mod smtp;
