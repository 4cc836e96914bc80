"""How often Python's cyclic garbage collector runs in a kpledger process (every command, the
node among them).

Almost all of our objects are freed by reference counting the moment they are no longer used;
the cyclic collector only finds groups of objects that refer to each other. CPython runs it after
every 700 new container objects (the youngest generation), and each object that lives through
two such collections moves to the oldest generation, which is collected whole (every object the
process holds traversed) once it has grown by a quarter. A node at saturation makes objects fast
and keeps many for seconds (the events of its mempool, the requests in flight): they outlived
collections 700 objects apart, so the oldest generation grew fast, and a saturated node collected
it every 3 to 5 s, each time traversing some 330,000 objects for 0.2 to 0.3 s, with the event loop
stopped. That was 11 to 15% of a node's CPU; the audit of a long chain, whose in-memory state
holds a record for every certificate, spent 29 to 34% of its main process's CPU so.

Collecting the youngest generation after 50,000 new objects instead lets what a request or a
block makes die young, before it is promoted. The middle and oldest generations keep CPython's
ratios (each collected after 10 collections of the one below), so cyclic garbage is still found,
later: docs/performance.md ("Kept: the cyclic garbage collector's settings") gives the figures.
"""

from __future__ import annotations

import gc

#: New container objects (less those freed) between two collections of the youngest generation.
YOUNG_OBJECTS = 50_000
#: Collections of a generation between two of the next older one (CPython's own ratio).
GENERATION_RATIO = 10


def tune() -> None:
    """Set this process's collector to collect after YOUNG_OBJECTS new objects."""
    gc.set_threshold(YOUNG_OBJECTS, GENERATION_RATIO, GENERATION_RATIO)
