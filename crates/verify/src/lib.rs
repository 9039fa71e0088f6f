//! Runner for suricata-verify style conformance cases.
