"""HTTP/1.1 parsing: the C parser of the data plane, exposed to Python.

parse_request(data) -> Request | None, parse_response(data) -> Response | None,
ChunkedDecoder().feed(data) -> (bytes, done).  Malformed input raises
ParseError (a ValueError) whose `code` names the problem.
"""

from fastlb._http import (
    ERROR_CODES,
    ChunkedDecoder,
    ParseError,
    Request,
    Response,
    parse_request,
    parse_response,
)

__all__ = [
    "ERROR_CODES",
    "ChunkedDecoder",
    "ParseError",
    "Request",
    "Response",
    "parse_request",
    "parse_response",
]
