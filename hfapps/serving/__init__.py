"""`hfapps serve`: the helpers behind a REST API (FastAPI + uvicorn) with dynamic batching (`batcher`), an API
key and limits at the door (`guard`), its settings (`config`), a web page (`web/`), and the Python client that
calls it (`client`)."""
