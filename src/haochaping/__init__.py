"""Haochaping: the government-service good/bad review platform (政务服务“好差评”)."""

__version__ = "0.1.0"
