"""kpledger's imperative shell: configuration, HTTP server and gossip, timers, mempool, sync, CLI."""
