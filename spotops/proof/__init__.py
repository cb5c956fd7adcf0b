"""What the account proves: ``spotops doctor`` before a deploy, ``spotops verify`` after.

Both answer with a :class:`~spotops.proof.rows.ProofReport`: one row per check or flow, its
state, what was seen, what to do and the runbook that says more.
"""
