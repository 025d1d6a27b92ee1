"""The REST API app (FastAPI on uvicorn): `claims api`, `make serve`. Routers are thin; the logic is in libs/."""
