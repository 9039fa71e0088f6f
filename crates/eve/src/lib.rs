//! Log output: Suricata EVE JSON and the AWS Network Firewall log envelope.
