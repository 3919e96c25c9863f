"""The baseline of the HTTP figures: a bare FastAPI `async def` endpoint.

Served by `bench/run_all.py` with uvicorn on the same worker count (and the
same event loop and HTTP parser uvicorn picks for fieldledger), so that a
command's or /healthz's rate can be read as a fraction of what the stack
itself can answer on this machine in the same minute.
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
