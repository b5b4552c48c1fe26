"""The tamper-evident rating ledger (评价存证账本): SM3 content hashes sealed into a hash chain."""
