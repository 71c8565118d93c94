"""The approval of a ticket: what the rules weigh (``facts``), where it goes and who approves
each node (``routing``), submission and the way from node to node (``flow``), ApproveOrder's
acts on a node (``acts``) and what an approval shows (``views``). All of it happens in the
request that asks; there is no job executor (``run.py``) here. Templates, nodes and rule sets
are the rulebook's (``rulebook``).
"""
