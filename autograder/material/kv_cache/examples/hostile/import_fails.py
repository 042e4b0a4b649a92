# Fails at import: a module that does not exist.
import kvcache_helpers_that_do_not_exist  # noqa: F401
