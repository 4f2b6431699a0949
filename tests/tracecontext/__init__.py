"""A service of RequestIDMiddleware and ServiceClient for the W3C Trace Context
test suite (``tox -e tracecontext``)."""
