//! Suricata 8 rule language: typed AST with source spans, parser, canonical printer.
