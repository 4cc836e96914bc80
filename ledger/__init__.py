"""kpledger's functional core: model, encoding, signatures, proofs, state machine, consensus, store."""
