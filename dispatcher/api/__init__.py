"""The HTTP edge: FastAPI app, dependencies, schemas and one router per resource."""
