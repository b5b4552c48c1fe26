"""The tamper-evident rating ledger (评价存证账本): SM3 content hashes sealed into a hash chain.

Every pass of the worker (and `haochaping ledger seal`) seals the committed ratings not yet
sealed, in id order, into blocks of up to 10,000: each rating gets an entry (its seq in the
ledger and its SM3 content hash), each block a Merkle root over its entries and a root that
covers the previous block's root. The roots are published (API and the /ledger page). The
algorithm is documented in `hashing`.

What `haochaping ledger verify` finds, by rating id where there is one:

* ALTERED - a sealed rating whose stored content no longer hashes to its entry;
* MISSING - a sealed rating whose row is gone;
* INSERTED - a rating without an entry at or below the watermark (the highest id sealed by a
  block sealed more than five minutes ago): every honest rating down there has been sealed,
  so it was put in behind the sealer's back (or its transaction stayed open for minutes);
* ENTRY_MISSING / ENTRY_FORGED - gaps in a block's seq range (named by seq and the ids either
  side), and entries outside their block;
* BLOCK_ALTERED - a block whose entries no longer add up to its Merkle root (an entry's hash
  rewritten along with its rating: the rating is no longer named, the block is);
* ROOT_MISMATCH / CHAIN_BROKEN - a block whose header no longer hashes to its root, or that
  does not follow on from the block before;
* ANCHOR_MISMATCH - a block whose root differs from one published earlier (`--anchor`).

What it cannot find: a rating inserted with a fresh id (above the watermark) before the next
seal is sealed like any other - the ledger proves that a rating has not changed since it was
sealed, minutes after intake, not that it was genuine (that is the integrity detectors' job);
ratings still waiting for a seal are only counted as pending; and an attacker who rewrites the
whole ledger consistently (every hash, every root after the change) is caught only by
comparing roots with copies kept outside the database - the published roots (`--anchor`).
"""
