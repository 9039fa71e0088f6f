//! DNS firewall with Route 53 Resolver DNS Firewall semantics: policy, forwarder, query log.
