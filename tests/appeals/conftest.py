from tests.workorders.conftest import bad, handlers  # noqa: F401  (shared fixtures)
