//! Capture file reading: pcap, pcapng, gzip, timestamp-ordered merge of several files.
