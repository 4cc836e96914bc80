"""The pieces of scripts/make_testvectors.py: fixed keys and chain, and each family of vectors."""
