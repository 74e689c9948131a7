"""TF Serving's status codes and the HTTP codes its REST API maps them to (http_rest_api_util)."""

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "DEADLINE_EXCEEDED": 408,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "INTERNAL": 500,
}
# tensorflow/core/protobuf/error_codes.proto, by number (the same numbers as gRPC's).
CODE_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)

_TRACE_LINES = ("Graph execution error", "Detected at node", "<stack traces", "\t", " ", "  File")


class ServingError(Exception):
    """An error with a TF Serving status code; the REST layer answers `{"error": message}`."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def from_op_error(cls, error):
        """A `tf.errors.OpError` raised while running a graph keeps its code, as in TF Serving,
        where a graph's InvalidArgumentError on bad input is the client's INVALID_ARGUMENT."""
        code = error.error_code
        name = CODE_NAMES[code] if 0 < code < len(CODE_NAMES) else "UNKNOWN"
        lines = [line for line in (error.message or str(error)).splitlines() if line.strip()]
        # Eager graph errors wrap the op's message in "Graph execution error:" and a trace.
        told = [line for line in lines if not line.startswith(_TRACE_LINES)]
        return cls(name, (told or lines or ["graph error"])[0])

    @property
    def http_status(self):
        return HTTP_STATUS.get(self.code, 500)
