"""Text analysis of the comments (社情民意): what citizens keep running into.

Comments are segmented with jieba (`segment.py`: the shipped service-term dictionary, the
administrators' words from `topic_word`, a shipped stopword list) once each, by the periodic job
(`jobs.py`, with watermarks like the statistics' rollups), into counts per local day x
organisation x item x level class (`models.py`). The reads (`queries.py`) answer the most
frequent terms, phrases and reason codes of a scope and period, and the emerging topics: terms
whose share of an item's ratings rose significantly in the recent weeks (`significance.py`).
"""
