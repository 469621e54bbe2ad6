"""The pure order: layout, permutation, order, the shard/pass cursor, the state codec, seeds.

Nothing in ``core`` imports anything of ``episode_sampler`` outside ``core`` (nor torch at import time).
"""
