"""Every error the service returns, in OpenAI's JSON shape, decided in one place.

    {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature", "code": null}}
"""

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from seqgen.errors import SeqgenError
from seqgen.generation.batcher import QueueFull


class ServiceError(Exception):
    """An error with its HTTP status, OpenAI error type, offending field and extra headers."""

    def __init__(self, status, message, type_="invalid_request_error", param=None, code=None, headers=None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}


def bad_request(message, param=None):
    return ServiceError(400, f"{param}: {message}" if param else message, param=param)


def unknown_model(name, served):
    return ServiceError(404, f"model {name!r} is not served here (served: {', '.join(served)})",
                        param="model", code="model_not_found")


def _field(loc):
    parts = [str(p) for p in loc if p not in ("body", "query")]
    return ".".join(parts) or "body"


def to_service_error(exc, retry_after=1):
    """Any exception -> ServiceError (the one mapping from seqgen's and the framework's errors)."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return bad_request(f"invalid JSON ({first.get('ctx', {}).get('error', first['msg'])})", "body")
        message = "; ".join(f"{_field(e['loc'])}: {e['msg']}".replace("Value error, ", "") for e in errors)
        return ServiceError(400, message, param=_field(first["loc"]))
    if isinstance(exc, TimeoutError):  # asyncio.wait_for around a beam search
        return ServiceError(504, "the request took too long", "timeout_error", code="request_timeout")
    if isinstance(exc, QueueFull):
        return ServiceError(429, str(exc) + "; retry later", type_="rate_limit_error", code="queue_full",
                            headers={"Retry-After": str(retry_after)})
    if isinstance(exc, SeqgenError):  # a request's options or primer the model cannot take
        message = str(exc)
        field = message.split(":", 1)[0] if ":" in message and " " not in message.split(":", 1)[0] else None
        return ServiceError(400, message, param=field)
    if isinstance(exc, StarletteHTTPException):
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return ServiceError(exc.status_code, str(exc.detail), type_=type_, headers=getattr(exc, "headers", None))
    return ServiceError(500, "internal server error", type_="server_error")


def error_body(err):
    return {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}


def error_response(exc, retry_after=1):
    err = to_service_error(exc, retry_after)
    return JSONResponse(error_body(err), status_code=err.status, headers=err.headers)
