"""The window evaluator (评价器, 现场"一次一评"): pads paired with a window, the window's
current service as the queuing system announces it, and the pad's screens."""
