"""The store: a node's chain and what it implies, over a small key-value interface.

keys.py builds every key; kv.py is the interface (and MemoryKV); leveldb.py the LevelDB backend,
the one module that imports plyvel (imported only when a LevelDB store is opened); readers.py
the typed readers of each key family; writes.py what a final block writes; store.py the Store.
"""

from ledger.store.keys import index_keys
from ledger.store.kv import KV, MemoryKV, StoreListener
from ledger.store.readers import Readers, StoredEvent
from ledger.store.store import Store

__all__ = ["KV", "MemoryKV", "Readers", "Store", "StoreListener", "StoredEvent", "index_keys"]
