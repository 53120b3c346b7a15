"""Redis Streams: names (`names`), publishing (`bus`), consuming with reclaim and DLQ (`consumer`)."""
