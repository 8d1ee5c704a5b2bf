"""The daily semantic refresh, as plain logic: which masters are hot, what needs embedding, the
nearest-neighbour index and the ``related_masters`` maps, and progress accounting.

No Ray and no network client here: the Ray Data pipeline that drives these lives in
:mod:`hotpath.jobs.semantic_refresh`.
"""
