"""The national interface's shape: records that business systems already send to their
provincial platform, taken here unchanged (`POST /api/v1/compat/evaluations`)."""
