"""The HTTP routes, one router per resource; handlers are thin calls of :class:`serving.service.Service`."""
