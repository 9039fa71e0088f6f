//! sekisho firewall policy: YAML policy, NFW rule-group import, domain lists, validation.
