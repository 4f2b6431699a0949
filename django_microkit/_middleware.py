"""The one sync-and-async middleware shape every django-microkit middleware shares.

Django runs a middleware in the mode of the handler it wraps: a coroutine
under ASGI with async views, a plain call under WSGI. Each middleware here is
one class serving both without a thread hop, and says only what it does
before the view (:meth:`Middleware.before`), after it (:meth:`Middleware.after`)
and in any case at the end (:meth:`Middleware.end`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

__all__ = ["GetResponse", "Middleware"]

GetResponse = (
    Callable[[HttpRequest], HttpResponseBase]
    | Callable[[HttpRequest], Awaitable[HttpResponseBase]]
)

_State = TypeVar("_State")


class Middleware(Generic[_State]):
    """Base class: sync and async capable, with small overridable hooks."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        # A middleware with only an after hook skips the two empty ones.
        cls = type(self)
        self._after_only = cls.before is Middleware.before and cls.end is Middleware.end

    def __call__(
        self, request: HttpRequest
    ) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        if self._after_only:
            return self.after(request, self.get_response(request), None)  # type: ignore[arg-type]
        state = self.before(request)
        try:
            response: HttpResponseBase = self.get_response(request)  # type: ignore[assignment]
            return self.after(request, response, state)
        finally:
            self.end(state)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        state = self.before(request)
        try:
            get_response = cast(
                Callable[[HttpRequest], Awaitable[HttpResponseBase]], self.get_response
            )
            response = await get_response(request)
            return self.after(request, response, state)
        finally:
            self.end(state)

    def before(self, request: HttpRequest) -> _State:
        """Work before the view; the value returned is handed to the other hooks."""
        return None  # type: ignore[return-value]

    def after(
        self, request: HttpRequest, response: HttpResponseBase, state: _State
    ) -> HttpResponseBase:
        """The response to send, given the view's."""
        raise NotImplementedError

    def end(self, state: _State) -> None:
        """Clean-up that runs even when the view raised."""
