//! sans-I/O packet engine: decoding, flows, TCP reassembly, app layer, detection, verdicts.
